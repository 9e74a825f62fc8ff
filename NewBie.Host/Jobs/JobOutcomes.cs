using NewBie.Host.Accounts;
using NewBie.Host.Telemetry;

namespace NewBie.Host.Jobs;

/// <summary>
/// What follows from how a job ended, in one place whichever path ended it (worker, Hangfire filter, maintenance):
/// failures are counted by code, and a job that failed or expired for a server-side reason after it was accepted
/// gives its images back to the owner's daily quota (bad input never gets that far: it is refused at submit).
/// </summary>
public sealed class JobOutcomes
{
    private readonly AccountStore _accounts;
    private readonly NewBieMetrics _metrics;

    public JobOutcomes(JobStore jobs, AccountStore accounts, NewBieMetrics metrics)
    {
        _accounts = accounts;
        _metrics = metrics;
        jobs.Finished += OnFinished;
    }

    private void OnFinished(JobRecord job)
    {
        if (job.Error is { } error) _metrics.JobFailed(error.Code);
        if (job.Status is JobStatus.Failed or JobStatus.Expired)
            _accounts.ReturnImages(job.UserId, job.Params.Count, chargedAt: job.CreatedAt);
    }
}
