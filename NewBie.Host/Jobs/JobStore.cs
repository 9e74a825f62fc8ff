using LiteDB;
using NewBie.Host.Storage;

namespace NewBie.Host.Jobs;

public enum SubmitOutcome { Created, Replayed, IdempotencyConflict, QueueFull, UserQueueFull }

/// <summary>
/// The job records in the app database. Read-modify-write sequences run under one lock (LiteDB transactions are
/// thread-bound, and the sequences are short); every change completes <see cref="NextChange"/> so that event streams
/// wake without polling.
/// </summary>
public sealed class JobStore
{
    private readonly ILiteCollection<JobRecord> _jobs;
    private readonly Lock _gate = new();
    private long _lastSeq;
    private long _queueVersion;
    private TaskCompletionSource _changed = NewSignal();

    public JobStore(AppDatabase database)
    {
        _jobs = database.Collection<JobRecord>("jobs");
        _jobs.EnsureIndex(j => j.UserId);
        _jobs.EnsureIndex(j => j.Status);
        _jobs.EnsureIndex(j => j.Seq, unique: true);
        _jobs.EnsureIndex(j => j.IdempotencyKey);
        _jobs.EnsureIndex(j => j.HangfireJobId);
        _lastSeq = _jobs.Query().OrderByDescending(j => j.Seq).Limit(1).FirstOrDefault()?.Seq ?? 0;
    }

    /// <summary>Completes at the next change of any job (positions of all queued jobs move when one starts).</summary>
    public Task NextChange => Volatile.Read(ref _changed).Task;

    /// <summary>Raised once per job, after the change that finished it is saved (outside the lock).</summary>
    public event Action<JobRecord>? Finished;

    /// <summary>
    /// Raised after every saved change, in the order of the changes (under the lock: handlers must be quick and must not
    /// call the store), with the record as saved, which nobody changes afterwards: how event streams learn of a change
    /// without reading the store. <c>QueueChanged</c> is true when the change can
    /// move queue places (a job added, removed, started, finished, re-queued or re-prioritised).
    /// </summary>
    public event Action<JobRecord, bool>? Changed;

    /// <summary>Moves whenever a job is added or removed or changes status or priority: what queue places derive from.</summary>
    public long QueueVersion => Interlocked.Read(ref _queueVersion);

    public JobRecord? Find(string id) => _jobs.FindById(id);

    /// <summary>The job whose Hangfire job is <paramref name="hangfireJobId"/> (queue rows written before they carried the record id).</summary>
    public JobRecord? FindByHangfireJob(string hangfireJobId) => _jobs.FindOne(j => j.HangfireJobId == hangfireJobId);

    /// <summary>
    /// Stores a new job, or resolves its Idempotency-Key against an earlier one, or refuses it when the queue is full:
    /// all under one lock so that two identical submits cannot both create a job.
    /// </summary>
    public (SubmitOutcome Outcome, JobRecord? Job) Insert(JobRecord draft, int maxQueued, int? maxActiveOfUser = null)
    {
        lock (_gate)
        {
            if (draft.IdempotencyKey is { } key)
            {
                var user = draft.UserId;
                var earlier = _jobs.FindOne(j => j.UserId == user && j.IdempotencyKey == key);
                if (earlier is not null)
                    return (earlier.RequestHash == draft.RequestHash ? SubmitOutcome.Replayed : SubmitOutcome.IdempotencyConflict, earlier);
            }
            if (CountQueued() >= maxQueued) return (SubmitOutcome.QueueFull, null);
            if (maxActiveOfUser is { } cap && CountActive(draft.UserId) >= cap) return (SubmitOutcome.UserQueueFull, null);
            draft.Seq = ++_lastSeq;
            _jobs.Insert(draft);
            Interlocked.Increment(ref _queueVersion);
            Changed?.Invoke(draft, true);
        }
        Pulse();
        return (SubmitOutcome.Created, draft);
    }

    /// <summary>Applies <paramref name="change"/> under the lock and saves when it returns true; null when the job is gone.</summary>
    public JobRecord? Update(string id, Func<JobRecord, bool> change)
    {
        JobRecord? job;
        bool changed, finished, moved;
        lock (_gate)
        {
            job = _jobs.FindById(id);
            if (job is null) return null;
            var (wasFinished, status, priority) = (job.IsFinished, job.Status, job.Priority);
            changed = change(job);
            if (changed) _jobs.Update(job);
            finished = changed && !wasFinished && job.IsFinished;
            moved = changed && (job.Status != status || job.Priority != priority);
            if (moved) Interlocked.Increment(ref _queueVersion);
            if (changed) Changed?.Invoke(job, moved);
        }
        if (changed) Pulse();
        if (finished) Finished?.Invoke(job);
        return job;
    }

    public int CountQueued() => _jobs.Count(Query.EQ(nameof(JobRecord.Status), nameof(JobStatus.Queued)));

    /// <summary>A user's queued and running jobs: what the per-user cap counts.</summary>
    public int CountActive(string userId) =>
        _jobs.Count(Query.And(Query.EQ(nameof(JobRecord.UserId), userId),
            Query.Or(Query.EQ(nameof(JobRecord.Status), nameof(JobStatus.Queued)), Query.EQ(nameof(JobRecord.Status), nameof(JobStatus.Running)))));

    /// <summary>A user's queued and running jobs.</summary>
    public IReadOnlyList<JobRecord> ActiveOf(string userId) =>
        _jobs.Find(Query.And(Query.EQ(nameof(JobRecord.UserId), userId),
            Query.Or(Query.EQ(nameof(JobRecord.Status), nameof(JobStatus.Queued)), Query.EQ(nameof(JobRecord.Status), nameof(JobStatus.Running))))).ToList();

    public IReadOnlyList<JobRecord> FinishedSince(DateTime from) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt >= from).ToList();

    public IReadOnlyList<JobRecord> WithStatus(JobStatus status) =>
        _jobs.Find(Query.EQ(nameof(JobRecord.Status), status.ToString())).OrderBy(j => j.Seq).ToList();

    /// <summary>A user's jobs (everyone's when <paramref name="userId"/> is null), newest first, older than the cursor's submit sequence.</summary>
    public IReadOnlyList<JobRecord> List(string? userId, JobStatus? status, long? beforeSeq, int limit)
    {
        var query = _jobs.Query();
        if (userId is not null) query = query.Where(j => j.UserId == userId);
        if (status is { } s) query = query.Where(Query.EQ(nameof(JobRecord.Status), s.ToString()));
        if (beforeSeq is { } before) query = query.Where(j => j.Seq < before);
        return query.OrderByDescending(j => j.Seq).Limit(limit).ToList();
    }

    public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt < cutoff).Where(j => j.IsFinished).ToList();

    public void Delete(string id)
    {
        lock (_gate)
        {
            _jobs.Delete(id);
            Interlocked.Increment(ref _queueVersion);
        }
        Pulse();
    }

    private void Pulse() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
