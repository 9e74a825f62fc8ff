using Hangfire.States;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Jobs;

public sealed class WorkerLostException(string message) : Exception(message);

/// <summary>
/// Counts the runs of a GPU job and stops a crash loop. Hangfire counts retries only after a failure, never after
/// the process died mid-job, so every election of Processing is one attempt: stored on the job record (which
/// survives any Hangfire storage) and as the Hangfire parameter "Attempt"; past MaxAttempts the job fails with worker_lost
/// instead of running again.
/// </summary>
public sealed class JobAttemptFilter(JobStore jobs, IOptions<JobsOptions> options, TimeProvider time) : IElectStateFilter
{
    public const string AttemptParameter = "Attempt";

    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is not ProcessingState) return;
        if (context.BackgroundJob.Job?.Type != typeof(GpuJob) || context.BackgroundJob.Job.Args is not [string jobId, ..]) return;

        var job = jobs.Update(jobId, j => j.CountAttempt(options.Value.MaxAttempts, time.GetUtcNow().UtcDateTime));
        if (job is null) return;
        context.SetJobParameter(AttemptParameter, job.Attempts);
        if (job.Error?.Code != JobErrorCodes.WorkerLost) return;
        context.CandidateState = new FailedState(new WorkerLostException(job.Error!.Message));
    }
}
