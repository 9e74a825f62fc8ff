using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Jobs;

public sealed class WorkerLostException(string message) : Exception(message);

/// <summary>
/// Stops a crash loop of a GPU job. Hangfire counts retries only after a failure, never after the process died mid-job,
/// so the job record counts the runs that started (<see cref="JobRecord.Start"/>, the write that says running); when
/// Hangfire elects Processing for a job that already started MaxAttempts times, it fails with worker_lost instead of
/// running again. The attempt about to start is also the Hangfire parameter "Attempt". Neither costs a write of its own
/// between two jobs: the filter only reads the record unless the job is lost, and the parameter goes into the commit
/// of the Processing state.
/// </summary>
public sealed class JobAttemptFilter(JobStore jobs, IOptions<JobsOptions> options, TimeProvider time) : IElectStateFilter
{
    public const string AttemptParameter = "Attempt";

    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is not ProcessingState) return;
        if (context.BackgroundJob.Job?.Type != typeof(GpuJob) || context.BackgroundJob.Job.Args is not [string jobId, ..]) return;

        if (jobs.FindStored(jobId) is not { IsFinished: false } job) return;
        if (job.Attempts < options.Value.MaxAttempts)
        {
            SetAttempt(context, job.Attempts + 1);
            return;
        }
        job = jobs.Update(jobId, j => j.LoseWorker(options.Value.MaxAttempts, time.GetUtcNow().UtcDateTime));
        if (job?.Error?.Code != JobErrorCodes.WorkerLost) return;
        context.CandidateState = new FailedState(new WorkerLostException(job.Error!.Message));
    }

    // In the transaction that stores the elected state where the storage can (LiteDB's can): ElectStateContext's own
    // SetJobParameter writes through the connection, a commit of its own on the worker's path between two jobs.
    private static void SetAttempt(ElectStateContext context, int attempts)
    {
        if (context.Transaction is JobStorageTransaction transaction && context.Storage.HasFeature(JobStorageFeatures.Transaction.SetJobParameter))
            transaction.SetJobParameter(context.BackgroundJob.Id, AttemptParameter, SerializationHelper.Serialize(attempts, SerializationOption.User));
        else
            context.SetJobParameter(AttemptParameter, attempts);
    }
}
