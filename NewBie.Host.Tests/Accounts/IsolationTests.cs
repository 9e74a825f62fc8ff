using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

public sealed class IsolationTests : IDisposable
{
    private static readonly object Small = new { prompt = "alice's", width = 256, height = 256, steps = 1 };
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Another_user_cannot_read_stream_fetch_or_cancel_a_job_and_gets_404()
    {
        var alice = _app.ClientWithKey("alice");
        var bob = _app.ClientWithKey("bob");
        var id = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(id, "succeeded");

        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, $"/v1/jobs/{id}"), (HttpMethod.Get, $"/v1/jobs/{id}/events"), (HttpMethod.Get, $"/v1/jobs/{id}/images/0"),
            (HttpMethod.Delete, $"/v1/jobs/{id}"), (HttpMethod.Get, $"/status/{id}"),
        })
        {
            using var response = await bob.SendAsync(new HttpRequestMessage(method, path));
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{method} {path} answered {(int)response.StatusCode}");
            Assert.Equal("not_found", (await response.ProblemAsync()).Str("code"));
        }
        using var own = await alice.GetAsync($"/v1/jobs/{id}/images/0");
        Assert.Equal(HttpStatusCode.OK, own.StatusCode);
    }

    [Fact]
    public async Task Another_users_job_is_not_in_the_list_and_only_admins_may_ask_for_other_users()
    {
        var alice = _app.ClientWithKey("alice");
        var bob = _app.ClientWithKey("bob");
        await alice.SubmitAsync(Small);

        var bobsList = await bob.GetFromJsonAsync<JsonElement>("/v1/jobs");
        using var peek = await bob.GetAsync("/v1/jobs?user=alice");

        Assert.Empty(bobsList.GetProperty("items").EnumerateArray());
        Assert.Equal(HttpStatusCode.Forbidden, peek.StatusCode);
        Assert.Equal("forbidden", (await peek.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Admin_sees_fetches_cancels_and_lists_any_users_jobs()
    {
        _app.Engine.Hold();
        var alice = _app.ClientWithKey("alice");
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var done = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(done, "running");
        var queued = (await alice.SubmitAsync(Small)).Str("id");

        var job = await admin.GetJobAsync(queued);
        var listed = await admin.GetFromJsonAsync<JsonElement>("/v1/jobs?user=alice");
        var all = await admin.GetFromJsonAsync<JsonElement>("/v1/jobs?user=*");
        var own = await admin.GetFromJsonAsync<JsonElement>("/v1/jobs");
        using var cancel = await admin.DeleteAsync($"/v1/jobs/{queued}");
        _app.Engine.Release();
        await alice.WaitForStatusAsync(done, "succeeded");
        using var image = await admin.GetAsync($"/v1/jobs/{done}/images/0");

        Assert.Equal(queued, job.Str("id"));
        Assert.Equal([queued, done], listed.GetProperty("items").EnumerateArray().Select(j => j.Str("id")));
        Assert.Equal(2, all.GetProperty("items").GetArrayLength());
        Assert.Empty(own.GetProperty("items").EnumerateArray());
        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        Assert.Equal("canceled", (await alice.GetJobAsync(queued)).Str("status"));
        Assert.Equal(HttpStatusCode.OK, image.StatusCode);
    }
}
