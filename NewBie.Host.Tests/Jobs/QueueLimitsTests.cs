using System.Net;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;

namespace NewBie.Host.Tests.Jobs;

public sealed class QueueLimitsTests
{
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 2 };

    [Fact]
    public async Task Full_queue_answers_503_queue_full_with_retry_after()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxQueuedJobs"] = "1" });
        app.Engine.Hold();
        var client = app.ClientFor();
        var running = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(running, "running");
        await client.SubmitAsync(Small);

        using var response = await client.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("queue_full", (await response.ProblemAsync()).Str("code"));
        Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        using var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
    }

    [Fact]
    public async Task Job_queued_longer_than_max_queue_wait_expires_and_never_runs()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxQueueWait"] = "00:10:00" });
        app.Engine.Hold();
        var client = app.ClientFor();
        var running = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(running, "running");
        var waiting = (await client.SubmitAsync(Small)).Str("id");

        app.Time.Advance(TimeSpan.FromMinutes(11));
        var expired = app.Service<JobMaintenance>().ExpireStale();

        Assert.Equal(1, expired);
        Assert.Equal("expired", (await client.GetJobAsync(waiting)).Str("status"));
        // A job submitted after it runs after it would have (FIFO within a user): once that one is done, the expired
        // job had its chance to run and did not take it.
        var later = (await client.SubmitAsync(new { prompt = "later", width = 256, height = 256, steps = 2 })).Str("id");
        app.Engine.Release();
        await client.WaitForStatusAsync(later, "succeeded");
        Assert.Equal(2, app.Engine.Runs);
        Assert.Equal("later", app.Engine.RunOrder.Last());
    }

    [Fact]
    public async Task Job_reaching_the_gpu_after_max_queue_wait_expires_without_running()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxQueueWait"] = "00:10:00" });
        app.Engine.Hold();
        var client = app.ClientFor();
        var running = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(running, "running");
        var waiting = (await client.SubmitAsync(Small)).Str("id");

        app.Time.Advance(TimeSpan.FromMinutes(11));
        app.Engine.Release();

        await client.WaitForStatusAsync(waiting, "expired");
        Assert.Equal(1, app.Engine.Runs);
    }

    [Fact]
    public async Task Run_longer_than_max_run_time_fails_with_timeout()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxRunTime"] = "00:01:00" });
        app.Engine.Hold();
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(id, "running");

        app.Time.Advance(TimeSpan.FromMinutes(2));

        var job = await client.WaitForStatusAsync(id, "failed");
        Assert.Equal("timeout", job.GetProperty("error").Str("code"));
    }

    [Fact]
    public async Task Out_of_memory_that_persists_fails_the_job_with_out_of_memory_after_a_degraded_retry_and_a_requeue()
    {
        using var app = new NewBieApplication(new() { ["Jobs:OomRequeueDelay"] = "00:00:00" });
        // What TorchSharp throws for a failed CUDA allocation.
        app.Engine.Failure = new System.Runtime.InteropServices.ExternalException("CUDA out of memory. Tried to allocate 2.00 GiB");
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");

        var job = await client.WaitForStatusAsync(id, "failed");

        Assert.Equal("out_of_memory", job.GetProperty("error").Str("code"));
        Assert.Equal(2, job.GetProperty("attempts").GetInt32());
        Assert.Equal(2, job.GetProperty("oom_retries").GetInt32());
        // First run, its degraded retry, and the (already degraded) run after the re-queue.
        Assert.Equal(3, app.Engine.Runs);
    }

    [Fact]
    public async Task Retention_deletes_finished_jobs_and_their_files()
    {
        using var app = new NewBieApplication(new() { ["Jobs:RetentionDays"] = "1" });
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(id, "succeeded");
        var folder = Path.Combine(app.DataDir, "outputs", OutputStore.UserFolder(CurrentUserId), id);
        Assert.True(File.Exists(Path.Combine(folder, "0.png")));

        app.Time.Advance(TimeSpan.FromHours(23));
        Assert.Equal(0, await app.Service<JobMaintenance>().DeleteOldResultsAsync());
        app.Time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1, await app.Service<JobMaintenance>().DeleteOldResultsAsync());

        Assert.False(Directory.Exists(folder));
        using var response = await client.GetAsync($"/v1/jobs/{id}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    private const string CurrentUserId = "local";
}

/// <summary>
/// Crash recovery as the restarted process sees it: a record left running (its Hangfire job gone with the old
/// process) is re-queued at start, runs again with the next attempt, and a crash loop ends in worker_lost.
/// </summary>
public sealed class RecoveryTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Jobs:MaxAttempts"] = "3" });

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Job_left_running_by_a_dead_process_runs_again_with_the_next_attempt()
    {
        var client = _app.ClientFor();
        var id = LeaveRunning(attempts: 1);

        _app.Service<JobQueue>().Reconcile();

        var job = await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(2, job.GetProperty("attempts").GetInt32());
        Assert.Single(job.GetProperty("images").EnumerateArray());
    }

    [Fact]
    public async Task Job_past_max_attempts_fails_with_worker_lost_without_running()
    {
        var client = _app.ClientFor();
        var id = LeaveRunning(attempts: 3);

        _app.Service<JobQueue>().Reconcile();

        var job = await client.WaitForStatusAsync(id, "failed");
        Assert.Equal("worker_lost", job.GetProperty("error").Str("code"));
        Assert.Equal(3, job.GetProperty("attempts").GetInt32());
        Assert.Equal(0, _app.Engine.Runs);
    }

    [Fact]
    public async Task Job_stored_but_never_handed_to_hangfire_is_queued_at_start()
    {
        var client = _app.ClientFor();
        var id = LeaveRunning(attempts: 0, JobStatus.Queued, hangfireJobId: null);

        _app.Service<JobQueue>().Reconcile();

        var job = await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(1, job.GetProperty("attempts").GetInt32());
    }

    private string LeaveRunning(int attempts, JobStatus status = JobStatus.Running, string? hangfireJobId = "lost-with-the-old-process")
    {
        var id = Guid.NewGuid().ToString("N")[..20];
        var (outcome, _) = _app.Service<JobStore>().Insert(new JobRecord
        {
            Id = id,
            UserId = "local",
            Status = status,
            Attempts = attempts,
            HangfireJobId = hangfireJobId,
            Params = new JobParams { Prompt = "again", Width = 256, Height = 256, Steps = 2, Guidance = 5, Count = 1, Seed = 3 },
            CreatedAt = _app.Time.GetUtcNow().UtcDateTime,
            StartedAt = _app.Time.GetUtcNow().UtcDateTime,
        }, maxQueued: 100);
        Assert.Equal(SubmitOutcome.Created, outcome);
        return id;
    }
}
