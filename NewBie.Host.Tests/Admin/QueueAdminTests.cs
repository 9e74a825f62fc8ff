using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Accounts;
using NewBie.Host.Admin;
using NewBie.Host.HangfireStorage;
using NewBie.Host.Jobs;

namespace NewBie.Host.Tests.Admin;

public sealed class QueueAdminTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    private static object Small(string prompt) => new { prompt, width = 256, height = 256, steps = 2 };

    [Fact]
    public async Task Paused_worker_finishes_the_running_job_but_claims_no_new_one_until_resumed()
    {
        _app.Engine.Hold();
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");
        var running = (await alice.SubmitAsync(Small("first"))).Str("id");
        await alice.WaitForStatusAsync(running, "running");

        using var paused = await admin.PostAsync("/v1/admin/queue/pause", null);
        var waiting = (await alice.SubmitAsync(Small("second"))).Str("id");
        // The GPU worker's next look at its queue after the first job: it runs only once that job's record is saved as
        // succeeded, and is either a claim of the second job or a wait.
        var idleAfterFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _app.Service<LiteDbStorage>().FetcherWaiting += queues =>
        {
            if (queues.Contains(JobQueue.GpuQueue) && _app.Service<JobStore>().Find(running)?.Status == JobStatus.Succeeded) idleAfterFirst.TrySetResult();
        };
        _app.Engine.Release();
        await idleAfterFirst.Task.WaitAsync(TimeSpan.FromSeconds(20));
        var queue = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/queue");

        Assert.Equal(HttpStatusCode.OK, paused.StatusCode);
        Assert.True(_app.Service<QueueAdmin>().IsPaused);
        Assert.True(queue.GetProperty("paused").GetBoolean());
        var entry = Assert.Single(queue.GetProperty("jobs").EnumerateArray());
        Assert.Equal((waiting, "queued", 1), (entry.Str("id"), entry.Str("status"), entry.GetProperty("position").GetInt32()));
        Assert.Equal(1, _app.Engine.Runs);

        using var resumed = await admin.PostAsync("/v1/admin/queue/resume", null);
        await alice.WaitForStatusAsync(waiting, "succeeded");
        Assert.False((await resumed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("paused").GetBoolean());
    }

    [Fact]
    public async Task Move_to_front_runs_a_waiting_job_before_everything_queued_earlier()
    {
        _app.Engine.Hold();
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");
        var running = (await alice.SubmitAsync(Small("a"))).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        var b = (await alice.SubmitAsync(Small("b"))).Str("id");
        var c = (await admin.SubmitAsync(new { prompt = "c", width = 256, height = 256, steps = 2, priority = "high" })).Str("id");
        var d = (await alice.SubmitAsync(Small("d"))).Str("id");

        using var moved = await admin.PostAsync($"/v1/admin/jobs/{d}/front", null);
        var queue = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/queue");
        _app.Engine.Release();
        foreach (var id in new[] { b, c, d }) await admin.WaitForStatusAsync(id, "succeeded");

        Assert.Equal(HttpStatusCode.NoContent, moved.StatusCode);
        var jobs = queue.GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(new[] { running, d, c, b }, jobs.Select(j => j.Str("id")));
        Assert.Equal(("running", "front", 1), (jobs[0].Str("status"), jobs[1].Str("priority"), jobs[1].GetProperty("position").GetInt32()));
        Assert.Equal(new[] { "a", "d", "c", "b" }, _app.Engine.RunOrder);
        Assert.Equal("front", (await admin.GetJobAsync(d)).Str("priority"));
    }

    [Fact]
    public async Task Priority_of_a_waiting_job_can_be_lowered_behind_the_others()
    {
        _app.Engine.Hold();
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");
        var running = (await alice.SubmitAsync(Small("a"))).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        var b = (await alice.SubmitAsync(Small("b"))).Str("id");
        var c = (await alice.SubmitAsync(Small("c"))).Str("id");

        using var lowered = await admin.PutAsJsonAsync($"/v1/admin/jobs/{b}/priority", new { priority = "low" });
        using var bad = await admin.PutAsJsonAsync($"/v1/admin/jobs/{b}/priority", new { priority = "urgent" });
        _app.Engine.Release();
        foreach (var id in new[] { b, c }) await admin.WaitForStatusAsync(id, "succeeded");

        Assert.Equal(HttpStatusCode.NoContent, lowered.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal(new[] { "a", "c", "b" }, _app.Engine.RunOrder);
    }

    [Fact]
    public async Task Reordering_a_running_or_unknown_job_is_refused()
    {
        _app.Engine.Hold();
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var running = (await admin.SubmitAsync(Small("a"))).Str("id");
        await admin.WaitForStatusAsync(running, "running");

        using var ofRunning = await admin.PostAsync($"/v1/admin/jobs/{running}/front", null);
        using var ofUnknown = await admin.PostAsync("/v1/admin/jobs/nope/front", null);

        Assert.Equal(HttpStatusCode.Conflict, ofRunning.StatusCode);
        Assert.Equal(QueueAdminApi.NotQueued, (await ofRunning.ProblemAsync()).Str("code"));
        Assert.Equal(HttpStatusCode.NotFound, ofUnknown.StatusCode);
        _app.Engine.Release();
    }

    [Fact]
    public async Task Queue_admin_is_refused_to_non_admins()
    {
        var alice = _app.ClientWithKey("alice");

        using var list = await alice.GetAsync("/v1/admin/queue");
        using var pause = await alice.PostAsync("/v1/admin/queue/pause", null);

        Assert.Equal(HttpStatusCode.Forbidden, list.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, pause.StatusCode);
        Assert.False(_app.Service<QueueAdmin>().IsPaused);
    }
}
