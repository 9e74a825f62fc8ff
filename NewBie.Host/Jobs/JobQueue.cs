using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.Options;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Jobs;

/// <summary>Submitting (in group commits) and cancelling GPU jobs: the Hangfire job that carries only the record's id, then the durable record.</summary>
public sealed class JobQueue(
    JobStore jobs,
    RunningJobs running,
    IBackgroundJobClientV2 hangfire,
    Hangfire.Client.IBackgroundJobFactory factory,
    Hangfire.JobStorage storage,
    IOptions<JobsOptions> options,
    TimeProvider time,
    ILogger<JobQueue> logger)
{
    public const string GpuQueue = "gpu";

    private static readonly HashSet<string> FinalStates = [DeletedState.StateName, SucceededState.StateName, FailedState.StateName];

    /// <summary>The most submits one group commit takes: a bound on its transactions and on the wait of its first submit.</summary>
    internal const int MaxBatch = 256;

    // Submits waiting for the next group commit, and whether one is being committed (by a submit's thread or the pool).
    private readonly Lock _pendingGate = new();
    private List<(SubmitRequest Request, TaskCompletionSource<(SubmitOutcome, JobRecord?)> Done)> _pending = [];
    private bool _committing;
    private int _writing;
    private long _groupCommits;

    /// <summary>Submits waiting for the next group commit (tests read it).</summary>
    internal int Waiting
    {
        get { lock (_pendingGate) return _pending.Count; }
    }

    /// <summary>Submits in the group commit being written now (tests read it).</summary>
    internal int Writing => Volatile.Read(ref _writing);

    /// <summary>Group commits written since start (tests read it).</summary>
    internal long GroupCommits => Interlocked.Read(ref _groupCommits);

    /// <summary>
    /// Stores a new job: checked against the caps and the quota (<paramref name="quota"/>), its Hangfire job created and
    /// its record stored, all durable when the task completes. Submits that arrive while a group commit is being written
    /// wait for the next one, which takes them all (<see cref="JobStore.InsertMany"/>): under a burst, a few commits per
    /// batch instead of three per submit. Records shared with other nodes go one by one.
    /// </summary>
    public Task<(SubmitOutcome Outcome, JobRecord? Job)> SubmitAsync(JobRecord draft, int? maxActiveOfUser = null, StorageCap? storageCap = null, QuotaCharge? quota = null)
    {
        draft.Id = NewId();
        draft.Status = JobStatus.Queued;
        draft.CreatedAt = time.GetUtcNow().UtcDateTime;
        var request = new SubmitRequest(draft, options.Value.MaxQueuedJobs, maxActiveOfUser, storageCap, quota);
        if (jobs.IsShared) return Task.FromResult(SubmitOne(request));
        var done = new TaskCompletionSource<(SubmitOutcome, JobRecord?)>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool lead;
        lock (_pendingGate)
        {
            _pending.Add((request, done));
            lead = !_committing;
            _committing = true;
        }
        // The first submit to find no commit under way writes one at once (no waiting for company when alone).
        if (lead) CommitPending();
        return done.Task;
    }

    /// <summary>
    /// Writes one group commit of the waiting submits and answers them; if more arrived meanwhile, the next commit is
    /// left to the thread pool, so that the submit whose thread wrote this one is answered now.
    /// </summary>
    private void CommitPending()
    {
        List<(SubmitRequest Request, TaskCompletionSource<(SubmitOutcome, JobRecord?)> Done)> batch;
        lock (_pendingGate)
        {
            if (_pending.Count <= MaxBatch) (batch, _pending) = (_pending, []);
            else
            {
                batch = _pending[..MaxBatch];
                _pending.RemoveRange(0, MaxBatch);
            }
            _writing = batch.Count;
        }
        try
        {
            // The Hangfire jobs first (they carry the records' ids), then the records with their Hangfire ids and the
            // quota charges in one write: a crash between the two leaves Hangfire jobs without records, which the worker
            // drops (no 202 was sent); the other order needs a second write of each record.
            var results = jobs.InsertMany([.. batch.Select(b => b.Request)], CreateHangfireJobs);
            for (var i = 0; i < batch.Count; i++) batch[i].Done.SetResult(results[i]);
        }
        catch (Exception e)
        {
            foreach (var (_, done) in batch) done.SetException(e);
        }
        Interlocked.Increment(ref _groupCommits);
        lock (_pendingGate)
        {
            _writing = 0;
            if (_pending.Count == 0)
            {
                _committing = false;
                return;
            }
        }
        ThreadPool.UnsafeQueueUserWorkItem(static queue => queue.CommitPending(), this, preferLocal: false);
    }

    /// <summary>
    /// The submit of records shared with other nodes: the quota charged first (in its own database step), then the
    /// database's own checked insert; the charge given back when no job was created.
    /// </summary>
    private (SubmitOutcome Outcome, JobRecord? Job) SubmitOne(SubmitRequest request)
    {
        var (draft, _, maxActiveOfUser, storageCap, quota) = request;
        if (quota is not null && !quota.Charge()) return (SubmitOutcome.QuotaExceeded, null);
        (SubmitOutcome Outcome, JobRecord? Job) result;
        try
        {
            result = jobs.Insert(draft, request.MaxQueued, maxActiveOfUser, j => j.HangfireJobId = CreateHangfireJob(j, new EnqueuedState(GpuQueue)), storageCap);
        }
        catch (Exception e) when (quota is not null)
        {
            // Best effort: a full disk may refuse the refund too, and the submit's own error must still be answered.
            try
            {
                quota.Refund();
            }
            catch (IOException refund)
            {
                logger.LogWarning(refund, "Could not give back the images of a failed submit ({Error})", e.Message);
            }
            throw;
        }
        if (result.Outcome != SubmitOutcome.Created) quota?.Refund();
        return result;
    }

    private void CreateHangfireJobs(IReadOnlyList<JobRecord> batch)
    {
        if (factory is OneCommitJobFactory oneCommit
            && oneCommit.TryCreateMany(storage, [.. batch.Select(j => (GpuCall(j), Parameters(j), (IState)new EnqueuedState(GpuQueue)))]) is { } ids)
        {
            for (var i = 0; i < batch.Count; i++) batch[i].HangfireJobId = ids[i];
            return;
        }
        foreach (var job in batch) job.HangfireJobId = CreateHangfireJob(job, new EnqueuedState(GpuQueue));
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

    private string CreateHangfireJob(JobRecord job, IState state) => hangfire.Create(GpuCall(job), state, Parameters(job));

    private static Job GpuCall(JobRecord job)
    {
        var id = job.Id;
        return Job.FromExpression<GpuJob>(g => g.RunAsync(id, CancellationToken.None), GpuQueue);
    }

    // Where the job stands in the fair queue, copied into its queue row.
    private static Dictionary<string, object> Parameters(JobRecord job) => new()
    {
        [FairQueueParameters.UserId] = job.UserId,
        [FairQueueParameters.Priority] = job.Priority,
        [FairQueueParameters.Seq] = job.Seq,
        [FairQueueParameters.Ref] = job.Id,
    };

    private static string NewId() => Guid.NewGuid().ToString("N")[..20];
}
