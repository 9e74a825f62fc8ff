using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace NewBie.Host.Tests.Jobs;

public sealed class CancelTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Cancel_of_queued_job_is_immediate_and_it_never_runs()
    {
        _app.Engine.Hold();
        var client = _app.ClientFor();
        var running = (await client.SubmitAsync(new { prompt = "first", width = 256, height = 256, steps = 2 })).Str("id");
        await client.WaitForStatusAsync(running, "running");
        var queued = (await client.SubmitAsync(new { prompt = "second", width = 256, height = 256, steps = 2 })).Str("id");

        using var response = await client.DeleteAsync($"/v1/jobs/{queued}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("canceled", (await response.Content.ReadFromJsonAsync<JsonElement>()).Str("status"));
        // A later job of the same user runs after the canceled one would have (FIFO within a user): once it is done,
        // the canceled one had its chance to run and did not take it.
        var later = (await client.SubmitAsync(new { prompt = "third", width = 256, height = 256, steps = 2 })).Str("id");
        _app.Engine.Release();
        await client.WaitForStatusAsync(later, "succeeded");
        Assert.Equal(new[] { "first", "third" }, _app.Engine.RunOrder);
        Assert.Equal("canceled", (await client.GetJobAsync(queued)).Str("status"));
    }

    [Fact]
    public async Task Cancel_of_running_job_stops_before_next_step()
    {
        _app.Engine.Hold();
        var client = _app.ClientFor();
        var id = (await client.SubmitAsync(new { prompt = "long", width = 256, height = 256, steps = 50 })).Str("id");
        await client.WaitForStatusAsync(id, "running");
        var stepsBefore = _app.Engine.StepsRun;

        var started = DateTime.UtcNow;
        using var response = await client.DeleteAsync($"/v1/jobs/{id}");
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var job = await client.WaitForStatusAsync(id, "canceled");

        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1), "canceled within a second, without Hangfire's watcher");
        Assert.True(_app.Engine.StepsRun <= stepsBefore + 1, $"at most one more step ran ({stepsBefore} → {_app.Engine.StepsRun})");
        Assert.Empty(job.GetProperty("images").EnumerateArray());
        using var again = await client.DeleteAsync($"/v1/jobs/{id}");
        Assert.Equal("not_cancelable", (await again.ProblemAsync()).Str("code"));
    }
}
