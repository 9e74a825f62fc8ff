using System.Collections.Concurrent;

namespace NewBie.Host.Jobs;

public enum SubmitOutcome { Created, Replayed, IdempotencyConflict, QueueFull, UserQueueFull, StorageCapExceeded, QuotaExceeded }

/// <summary>
/// A submit's daily-quota charge: <paramref name="Charge"/> answers false when the quota is used up, <paramref name="Refund"/>
/// gives the images back when the submit then creates no job. In a batch (<see cref="JobStore.InsertMany"/>) both run
/// inside the batch's one write of the records' database, so a charge is stored with its job or not at all.
/// </summary>
public sealed record QuotaCharge(Func<bool> Charge, Action Refund);

/// <summary>One submit of a batch: the draft and what it is checked against, in <see cref="JobStore.Insert"/>'s order (quota first).</summary>
public sealed record SubmitRequest(JobRecord Draft, int MaxQueued, int? MaxActiveOfUser = null, StorageCap? StorageCap = null, QuotaCharge? Quota = null);

/// <summary>
/// The per-user storage cap a submit is checked against together with the queue caps: the user's kept bytes, their
/// unfinished jobs at their largest and the new job at its largest must fit in <paramref name="MaxBytes"/>.
/// <paramref name="UsedBytes"/> is what the user's outputs take as the submit measured them; records shared with other
/// nodes read the shared count instead when it has one.
/// </summary>
public readonly record struct StorageCap(long MaxBytes, long UsedBytes);

/// <summary>
/// The job records (kept by an <see cref="IJobRecords"/>) and the rules on them. Read-modify-write sequences run under
/// one lock (LiteDB transactions are thread-bound, and the sequences are short); every change completes
/// <see cref="NextChange"/> and raises <see cref="Changed"/> so that event streams wake without polling. Records that
/// other processes write too (<see cref="ISharedJobRecords"/>, PostgreSQL) make the submit's checks, each change
/// and the counts steps of the database instead, since this process's lock and counts cannot see the others'.
/// </summary>
public sealed class JobStore
{
    private readonly IJobRecords _jobs;
    private readonly ISharedJobRecords? _shared;
    private readonly SavedRecords? _saved;
    private readonly Lock _gate = new();
    private long _lastSeq;
    private long _queueVersion;
    private long _queueMoves;
    // The jobs being stored now (their queue entries exist a moment before their records): see FindQueued.
    private IReadOnlyList<JobRecord>? _inserting;
    // Counted in memory so that a submit's cap checks cost the same at any depth of the queue: changed under the lock,
    // read without it (a submit's early storage-cap check must not wait for a group commit's disk writes; the checks
    // that decide run under the lock).
    private int _queued;
    private readonly ConcurrentDictionary<string, (int Jobs, long Bytes)> _activeOf = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = NewSignal();

    public JobStore(IJobRecords records)
    {
        _jobs = records;
        _shared = records as ISharedJobRecords;
        if (_shared is not null) return;
        _saved = new SavedRecords();
        _lastSeq = _jobs.LastSeq();
        foreach (var job in WithStatus(JobStatus.Queued).Concat(WithStatus(JobStatus.Running))) Count(job, +1);
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

    /// <summary>
    /// Moves with every change that can move queue places other than a new job: what a reader that placed each new job
    /// into what it derived before (<see cref="QueueView"/>) must derive again after.
    /// </summary>
    public long QueueMoves => Interlocked.Read(ref _queueMoves);

    /// <summary>The job's record as last saved; shared with other readers: read it, never change it.</summary>
    public JobRecord? Find(string id)
    {
        if (_saved is null) return _jobs.Find(id);
        if (_saved.Find(id) is { } saved) return saved;
        var readAt = _saved.Generation;
        var job = _jobs.Find(id);
        // Kept under the id it was asked by only (ids compare exactly: the app database's collation is ordinal).
        if (job is not null && job.Id == id) _saved.Keep(job, readAt);
        return job;
    }

    /// <summary>
    /// <see cref="Find"/> after any submit in progress has stored its record: a submit creates the Hangfire job before
    /// the record, under the lock, so the worker can claim a job whose record is a moment away; reading under the lock
    /// waits for it (without, the worker found no record and dropped the job).
    /// </summary>
    public JobRecord? FindStored(string id)
    {
        if (_shared is not null) return _jobs.Find(id);
        lock (_gate) return _jobs.Find(id);
    }

    /// <summary>
    /// <see cref="Find"/>, or the job being stored now: its queue entry is made (and seen by readers of the queue) just
    /// before its record is stored (<see cref="Insert"/>).
    /// </summary>
    public JobRecord? FindQueued(string id)
    {
        if (Volatile.Read(ref _inserting) is { } inserting)
            foreach (var job in inserting)
                if (job.Id == id) return job;
        return Find(id);
    }

    /// <summary>True where the records are shared with other processes (PostgreSQL): submits there go one by one (<see cref="Insert"/>).</summary>
    public bool IsShared => _shared is not null;

    /// <summary>The job whose Hangfire job is <paramref name="hangfireJobId"/> (queue rows written before they carried the record id).</summary>
    public JobRecord? FindByHangfireJob(string hangfireJobId) => _jobs.FindByHangfireJob(hangfireJobId);

    /// <summary>
    /// Stores a new job, or resolves its Idempotency-Key against an earlier one, or refuses it when the queue is full:
    /// all under one lock so that two identical submits cannot both create a job. <paramref name="beforeInsert"/> runs
    /// on an accepted job (its Seq set) just before it is stored, under the lock: how the job's queue entry is made
    /// first and its id stored with the record in the record's one write.
    /// </summary>
    public (SubmitOutcome Outcome, JobRecord? Job) Insert(JobRecord draft, int maxQueued, int? maxActiveOfUser = null, Action<JobRecord>? beforeInsert = null,
        StorageCap? storageCap = null)
    {
        lock (_gate)
        {
            SubmitOutcome outcome;
            JobRecord? job;
            Volatile.Write(ref _inserting, [draft]);
            try
            {
                (outcome, job) = _shared is null
                    ? InsertHere(draft, maxQueued, maxActiveOfUser, beforeInsert, storageCap)
                    : _shared.TryInsert(draft, maxQueued, maxActiveOfUser, beforeInsert, storageCap);
            }
            catch
            {
                // Its queue entry may exist without the record: readers that placed it must derive again.
                Interlocked.Increment(ref _queueMoves);
                Interlocked.Increment(ref _queueVersion);
                throw;
            }
            finally
            {
                Volatile.Write(ref _inserting, null);
            }
            if (outcome != SubmitOutcome.Created) return (outcome, job);
            Interlocked.Increment(ref _queueVersion);
            Changed?.Invoke(draft, true);
        }
        Pulse();
        return (SubmitOutcome.Created, draft);
    }

    /// <summary>The submit of records only this process writes: checked against its own counts, under the lock.</summary>
    private (SubmitOutcome Outcome, JobRecord? Job) InsertHere(JobRecord draft, int maxQueued, int? maxActiveOfUser, Action<JobRecord>? beforeInsert,
        StorageCap? storageCap)
    {
        var earlier = draft.IdempotencyKey is { } key ? _jobs.FindByIdempotencyKey(draft.UserId, key) : null;
        if (Check(draft, maxQueued, maxActiveOfUser, storageCap, earlier) is { } refused) return refused;
        draft.Seq = ++_lastSeq;
        beforeInsert?.Invoke(draft);
        _jobs.Insert(draft);
        Count(draft, +1);
        return (SubmitOutcome.Created, draft);
    }

    /// <summary>
    /// The checks of a submit against this process's counts, in order: idempotency (against <paramref name="earlier"/>,
    /// the user's job of the same key), queue cap, the user's cap, storage cap. Null when the job may be created.
    /// </summary>
    private (SubmitOutcome Outcome, JobRecord? Job)? Check(JobRecord draft, int maxQueued, int? maxActiveOfUser, StorageCap? storageCap, JobRecord? earlier)
    {
        if (draft.IdempotencyKey is not null && earlier is not null)
            return (earlier.RequestHash == draft.RequestHash ? SubmitOutcome.Replayed : SubmitOutcome.IdempotencyConflict, earlier);
        if (_queued >= maxQueued) return (SubmitOutcome.QueueFull, null);
        if (maxActiveOfUser is { } cap && _activeOf.GetValueOrDefault(draft.UserId).Jobs >= cap) return (SubmitOutcome.UserQueueFull, null);
        if (storageCap is { } storage && storage.UsedBytes + _activeOf.GetValueOrDefault(draft.UserId).Bytes + draft.Params.LargestBytes > storage.MaxBytes)
            return (SubmitOutcome.StorageCapExceeded, null);
        return null;
    }

    /// <summary>
    /// A group commit of submits (records only this process writes): each submit is checked in order exactly as
    /// <see cref="Insert"/> would check it one after the other (quota, idempotency — earlier submits of the batch
    /// included —, queue caps, storage cap), then <paramref name="beforeInsert"/> runs once on all accepted jobs (their
    /// Hangfire jobs, one commit), then their records and every quota charge are stored in one write of the records'
    /// database. Per submit, two commits shared by the batch instead of three of its own: what a burst of submits waited
    /// for. If anything throws, nothing of the batch is stored or charged, and every submit of it fails.
    /// </summary>
    public IReadOnlyList<(SubmitOutcome Outcome, JobRecord? Job)> InsertMany(IReadOnlyList<SubmitRequest> submits, Action<IReadOnlyList<JobRecord>> beforeInsert)
    {
        if (_shared is not null) throw new InvalidOperationException("Shared job records submit one by one (Insert).");
        var results = new (SubmitOutcome Outcome, JobRecord? Job)[submits.Count];
        var accepted = new List<JobRecord>(submits.Count);
        lock (_gate)
        {
            try
            {
                _jobs.InOneWrite(() =>
                {
                    // Keys accepted earlier in this batch: their records are not stored yet, but they replay all the same.
                    var keys = new Dictionary<(string User, string Key), JobRecord>();
                    for (var i = 0; i < submits.Count; i++)
                    {
                        var (draft, maxQueued, maxActiveOfUser, storageCap, quota) = submits[i];
                        if (quota is not null && !quota.Charge())
                        {
                            results[i] = (SubmitOutcome.QuotaExceeded, null);
                            continue;
                        }
                        var earlier = draft.IdempotencyKey is { } key
                            ? keys.GetValueOrDefault((draft.UserId, key)) ?? _jobs.FindByIdempotencyKey(draft.UserId, key)
                            : null;
                        if (Check(draft, maxQueued, maxActiveOfUser, storageCap, earlier) is { } refused)
                        {
                            quota?.Refund();
                            results[i] = refused;
                            continue;
                        }
                        draft.Seq = ++_lastSeq;
                        // Counted now, so that the next submit of the batch is checked against this one too.
                        Count(draft, +1);
                        accepted.Add(draft);
                        if (draft.IdempotencyKey is { } newKey) keys[(draft.UserId, newKey)] = draft;
                        results[i] = (SubmitOutcome.Created, draft);
                    }
                    if (accepted.Count == 0) return;
                    Volatile.Write(ref _inserting, accepted);
                    beforeInsert(accepted);
                    foreach (var job in accepted) _jobs.Insert(job);
                });
            }
            catch
            {
                foreach (var job in accepted) Count(job, -1);
                // Their queue entries may exist without records: readers that placed them must derive again.
                Moved();
                throw;
            }
            finally
            {
                Volatile.Write(ref _inserting, null);
            }
            if (accepted.Count == 0) return results;
            Interlocked.Increment(ref _queueVersion);
            foreach (var job in accepted) Changed?.Invoke(job, true);
        }
        Pulse();
        return results;
    }

    /// <summary>
    /// Applies <paramref name="change"/> under the lock and saves when it returns true; null when the job is gone. A
    /// change that is not <paramref name="durable"/> (progress) may be lost with a crash of the shared database (see
    /// <see cref="ISharedJobRecords.Update"/>).
    /// </summary>
    public JobRecord? Update(string id, Func<JobRecord, bool> change, bool durable = true)
    {
        JobRecord? job;
        bool changed, finished, moved;
        lock (_gate)
        {
            var (wasFinished, status, priority, before) = (false, default(JobStatus), 0, default(JobRecord));
            bool Apply(JobRecord read)
            {
                (wasFinished, status, priority) = (read.IsFinished, read.Status, read.Priority);
                before = new JobRecord { UserId = read.UserId, Status = status, Params = read.Params };
                return changed = change(read);
            }
            changed = false;
            if (_shared is not null) job = _shared.Update(id, Apply, durable);
            else
            {
                job = _jobs.Find(id);
                if (job is not null && Apply(job))
                {
                    try
                    {
                        _jobs.Update(job);
                    }
                    finally
                    {
                        _saved!.Changed(id);
                    }
                }
            }
            if (job is null) return null;
            if (changed && job.Status != status)
            {
                Count(before!, -1);
                Count(job, +1);
            }
            finished = changed && !wasFinished && job.IsFinished;
            moved = changed && (job.Status != status || job.Priority != priority);
            if (moved) Moved();
            if (changed) Changed?.Invoke(job, moved);
        }
        if (changed) Pulse();
        if (finished) Finished?.Invoke(job);
        return job;
    }

    public int CountQueued() => _shared is not null ? _shared.CountQueued() : Volatile.Read(ref _queued);

    /// <summary>A user's queued and running jobs: what the per-user cap counts.</summary>
    public int CountActive(string userId) => Active(userId).Jobs;

    /// <summary>The most bytes the images of a user's queued and running jobs can take (<see cref="JobParams.LargestBytes"/>).</summary>
    public long ActiveImageBytes(string userId) => Active(userId).Bytes;

    private (int Jobs, long Bytes) Active(string userId) => _shared is not null ? _shared.Active(userId) : _activeOf.GetValueOrDefault(userId);

    /// <summary>A user's queued and running jobs, oldest submit first.</summary>
    public IReadOnlyList<JobRecord> ActiveOf(string userId) =>
        [.. _jobs.Page(userId, JobStatus.Running, null, int.MaxValue).Concat(_jobs.Page(userId, JobStatus.Queued, null, int.MaxValue)).OrderBy(j => j.Seq)];

    public IReadOnlyList<JobRecord> FinishedSince(DateTime from) => _jobs.FinishedSince(from);

    public IReadOnlyList<JobRecord> WithStatus(JobStatus status) => _jobs.WithStatus(status);

    /// <summary>A user's jobs (everyone's when <paramref name="userId"/> is null), newest first, older than the cursor's submit sequence.</summary>
    public IReadOnlyList<JobRecord> List(string? userId, JobStatus? status, long? beforeSeq, int limit) => _jobs.Page(userId, status, beforeSeq, limit);

    public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) => _jobs.FinishedBefore(cutoff);

    public void Delete(string id)
    {
        lock (_gate)
        {
            if (_jobs.Find(id) is { } gone) Count(gone, -1);
            _jobs.Delete(id);
            _saved?.Changed(id);
            Moved();
        }
        Pulse();
    }

    // The moves first: a reader that sees the new version sees the move too.
    private void Moved()
    {
        Interlocked.Increment(ref _queueMoves);
        Interlocked.Increment(ref _queueVersion);
    }

    private void Count(JobRecord job, int delta)
    {
        if (job.IsFinished || _shared is not null) return;
        if (job.Status == JobStatus.Queued) Volatile.Write(ref _queued, _queued + delta);
        var (jobs, bytes) = _activeOf.GetValueOrDefault(job.UserId);
        jobs += delta;
        bytes += delta * job.Params.LargestBytes;
        if (jobs > 0) _activeOf[job.UserId] = (jobs, bytes);
        else _activeOf.TryRemove(job.UserId, out _);
    }

    private void Pulse() => Interlocked.Exchange(ref _changed, NewSignal()).TrySetResult();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
