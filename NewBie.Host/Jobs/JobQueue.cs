using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.Options;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Jobs;

/// <summary>Submitting and cancelling GPU jobs: the app record first (durable), then the Hangfire job that carries only its id.</summary>
public sealed class JobQueue(
    JobStore jobs,
    RunningJobs running,
    IBackgroundJobClientV2 hangfire,
    Hangfire.JobStorage storage,
    IOptions<JobsOptions> options,
    TimeProvider time,
    ILogger<JobQueue> logger)
{
    public const string GpuQueue = "gpu";


    private static readonly HashSet<string> FinalStates = [DeletedState.StateName, SucceededState.StateName, FailedState.StateName];

    public (SubmitOutcome Outcome, JobRecord? Job) Submit(JobRecord draft, int? maxActiveOfUser = null, StorageCap? storageCap = null)
    {
        draft.Id = NewId();
        draft.Status = JobStatus.Queued;
        draft.CreatedAt = time.GetUtcNow().UtcDateTime;
        // The Hangfire job first (it carries the record's id), then the record with the Hangfire id in its one write:
        // a crash between the two leaves a Hangfire job without a record, which the worker drops (no 202 was sent);
        // the other order needs a second write of the record per submit.
        return jobs.Insert(draft, options.Value.MaxQueuedJobs, maxActiveOfUser, j => j.HangfireJobId = CreateHangfireJob(j, new EnqueuedState(GpuQueue)), storageCap);
    }

    /// <summary>Cancels a queued job at once; a running one is signalled and stops before its next step.</summary>
    public CancelOutcome Cancel(string jobId)
    {
        var outcome = CancelOutcome.AlreadyFinished;
        var job = jobs.Update(jobId, j => j.Cancel(time.GetUtcNow().UtcDateTime, out outcome));
        if (outcome == CancelOutcome.Canceling) running.Cancel(jobId);
        if (outcome != CancelOutcome.AlreadyFinished && job?.HangfireJobId is { } hangfireId) hangfire.ChangeState(hangfireId, new DeletedState(), null);
        return outcome;
    }

    /// <summary>
    /// Gives every unfinished record a live Hangfire job at start: a crash between storing the record and creating
    /// its Hangfire job, or a Hangfire storage that does not survive restarts, must not strand a job.
    /// </summary>
    public void Reconcile()
    {
        using var connection = storage.GetConnection();
        foreach (var job in jobs.WithStatus(JobStatus.Queued).Concat(jobs.WithStatus(JobStatus.Running)))
        {
            if (job.HangfireJobId is { } id && connection.GetJobData(id) is { } data && !FinalStates.Contains(data.State))
                continue;
            logger.LogInformation("Re-queueing job {JobId} ({Status}) that has no live Hangfire job", job.Id, job.Status);
            Enqueue(job);
        }
    }

    /// <summary>
    /// Runs a job again after <paramref name="delay"/> (out-of-memory recovery): the jobs queued meanwhile, often
    /// lighter, go first and the memory they leave free may be enough.
    /// </summary>
    public void Requeue(JobRecord job, TimeSpan delay) =>
        Enqueue(job, delay > TimeSpan.Zero ? new ScheduledState(delay) : new EnqueuedState(GpuQueue));

    private void Enqueue(JobRecord job) => Enqueue(job, new EnqueuedState(GpuQueue));

    private void Enqueue(JobRecord job, IState state)
    {
        var hangfireId = CreateHangfireJob(job, state);
        jobs.Update(job.Id, j =>
        {
            j.HangfireJobId = hangfireId;
            return true;
        });
    }

    private string CreateHangfireJob(JobRecord job, IState state)
    {
        var parameters = new Dictionary<string, object>
        {
            [FairQueueParameters.UserId] = job.UserId,
            [FairQueueParameters.Priority] = job.Priority,
            [FairQueueParameters.Seq] = job.Seq,
            [FairQueueParameters.Ref] = job.Id,
        };
        var call = Job.FromExpression<GpuJob>(g => g.RunAsync(job.Id, CancellationToken.None), GpuQueue);
        return hangfire.Create(call, state, parameters);
    }

    private static string NewId() => Guid.NewGuid().ToString("N")[..20];
}
