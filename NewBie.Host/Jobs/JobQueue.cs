using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Jobs;

public enum CancelOutcome { Canceled, Canceling, AlreadyFinished }

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

    /// <summary>Hangfire job parameters the fair-order job storage reads when it queues the job.</summary>
    public const string UserIdParameter = "UserId", PriorityParameter = "Priority", SeqParameter = "Seq";

    private static readonly HashSet<string> FinalStates = [DeletedState.StateName, SucceededState.StateName, FailedState.StateName];

    public (SubmitOutcome Outcome, JobRecord? Job) Submit(JobRecord draft, int? maxActiveOfUser = null)
    {
        draft.Id = NewId();
        draft.Status = JobStatus.Queued;
        draft.CreatedAt = time.GetUtcNow().UtcDateTime;
        var (outcome, job) = jobs.Insert(draft, options.Value.MaxQueuedJobs, maxActiveOfUser);
        if (outcome == SubmitOutcome.Created) Enqueue(job!);
        return (outcome, job);
    }

    /// <summary>Cancels a queued job at once; a running one is signalled and stops before its next step.</summary>
    public CancelOutcome Cancel(string jobId)
    {
        var outcome = CancelOutcome.AlreadyFinished;
        var job = jobs.Update(jobId, j =>
        {
            switch (j.Status)
            {
                case JobStatus.Queued:
                    j.Status = JobStatus.Canceled;
                    j.CancelRequested = true;
                    j.FinishedAt = time.GetUtcNow().UtcDateTime;
                    outcome = CancelOutcome.Canceled;
                    return true;
                case JobStatus.Running:
                    outcome = CancelOutcome.Canceling;
                    if (j.CancelRequested) return false;
                    j.CancelRequested = true;
                    return true;
                default:
                    return false;
            }
        });
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

    private void Enqueue(JobRecord job)
    {
        var parameters = new Dictionary<string, object>
        {
            [UserIdParameter] = job.UserId,
            [PriorityParameter] = job.Priority,
            [SeqParameter] = job.Seq,
        };
        var call = Job.FromExpression<GpuJob>(g => g.RunAsync(job.Id, CancellationToken.None), GpuQueue);
        var hangfireId = hangfire.Create(call, new EnqueuedState(GpuQueue), parameters);
        jobs.Update(job.Id, j =>
        {
            j.HangfireJobId = hangfireId;
            return true;
        });
    }

    private static string NewId() => Guid.NewGuid().ToString("N")[..20];
}
