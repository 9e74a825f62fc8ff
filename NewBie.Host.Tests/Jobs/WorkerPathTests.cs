using NewBie.Host.HangfireStorage;
using NewBie.Host.Jobs;

namespace NewBie.Host.Tests.Jobs;

/// <summary>
/// The GPU worker's idle time between two jobs under backlog is the commits it makes in a row from the record that
/// says one job finished to the record that says the next one started (BENCHMARKS.md "scheduler overhead"). These
/// tests pin how many there are, so that a write added on that path shows here and not only in the bench.
/// </summary>
public sealed class WorkerPathTests
{
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 2 };

    [Fact]
    public async Task Between_two_queued_jobs_the_worker_commits_only_the_finish_the_claim_and_the_processing_state()
    {
        using var app = new NewBieApplication();
        var storage = app.Service<LiteDbStorage>();
        var store = app.Service<JobStore>();
        var client = app.ClientFor();
        storage.PauseQueue(JobQueue.GpuQueue);
        var first = (await client.SubmitAsync(Small)).Str("id");
        var second = (await client.SubmitAsync(Small)).Str("id");
        var changes = new List<(string Id, JobStatus Status, long HangfireCommits)>();
        store.Changed += (job, _) => { lock (changes) changes.Add((job.Id, job.Status, storage.Commits)); };

        storage.ResumeQueue(JobQueue.GpuQueue);
        await client.WaitForStatusAsync(first, "succeeded");
        await client.WaitForStatusAsync(second, "succeeded");

        List<(string Id, JobStatus Status, long HangfireCommits)> seen;
        lock (changes) seen = [.. changes];
        var finished = seen.FindIndex(c => c.Id == first && c.Status == JobStatus.Succeeded);
        var started = seen.FindIndex(c => c.Id == second && c.Status == JobStatus.Running);
        Assert.True(finished >= 0 && started > finished, $"changes seen: {string.Join(", ", seen)}");
        // hangfire.db: the first job's Succeeded state with its queue row's removal, Hangfire's worker acknowledging the
        // row again (a commit that deletes nothing; skipping it stopped jobs from being claimed, not yet understood),
        // the claim of the next row, and the next job's Processing state with its attempt parameter (not a commit of its own).
        Assert.Equal(4, seen[started].HangfireCommits - seen[finished].HangfireCommits);
        // app.db: nothing but the start, which counts the attempt.
        Assert.Equal(1, started - finished);
        Assert.Equal(1, store.Find(second)!.Attempts);
        using var connection = storage.GetConnection();
        Assert.Equal("1", connection.GetJobParameter(store.Find(second)!.HangfireJobId!, JobAttemptFilter.AttemptParameter));
    }
}
