using Hangfire;
using Hangfire.States;
using Microsoft.Extensions.Options;
using NewBie.Host.Outputs;

namespace NewBie.Host.Jobs;

/// <summary>Recurring clean-up on the "default" queue: queued jobs past MaxQueueWait expire; finished jobs past retention go, files and all.</summary>
public sealed class JobMaintenance(
    JobStore jobs,
    OutputStore outputs,
    IBackgroundJobClientV2 hangfire,
    IOptions<JobsOptions> options,
    TimeProvider time,
    ILogger<JobMaintenance> logger)
{
    public int ExpireStale()
    {
        var now = time.GetUtcNow().UtcDateTime;
        var expired = 0;
        foreach (var stale in jobs.WithStatus(JobStatus.Queued).Where(j => now - j.CreatedAt > options.Value.MaxQueueWait))
        {
            var job = jobs.Update(stale.Id, j => j.Expire(now));
            if (job?.Status != JobStatus.Expired) continue;
            expired++;
            if (job.HangfireJobId is { } hangfireId) hangfire.ChangeState(hangfireId, new DeletedState(), null);
        }
        if (expired > 0) logger.LogInformation("Expired {Count} jobs queued longer than {MaxQueueWait}", expired, options.Value.MaxQueueWait);
        return expired;
    }

    public async Task<int> DeleteOldResultsAsync()
    {
        var cutoff = time.GetUtcNow().UtcDateTime - TimeSpan.FromDays(options.Value.RetentionDays);
        var old = jobs.FinishedBefore(cutoff);
        foreach (var job in old)
        {
            // Outputs first: a store that fails here (bucket down) keeps the record, and the next run deletes both.
            await outputs.DeleteAsync(job, CancellationToken.None);
            jobs.Delete(job.Id);
        }
        if (old.Count > 0) logger.LogInformation("Deleted {Count} jobs finished before {Cutoff}", old.Count, cutoff);
        return old.Count;
    }
}
