using Hangfire;
using Hangfire.Annotations;
using Hangfire.Server;
using Hangfire.Storage;
using LiteDB;
using NewBie.Host.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// A Hangfire job storage in one LiteDB file, for one process. Writes funnel through one gate and one LiteDB
/// transaction each, so commits are atomic and no two writers can deadlock. The fair queues (default "gpu") dequeue
/// in <see cref="FairOrder"/>; other queues are FIFO. Holding the sidecar lock file proves any previous owner is
/// gone, so jobs it had fetched are handed out again at once.
/// </summary>
public sealed class LiteDbStorage : Hangfire.JobStorage, IFairQueue, IDisposable
{
    private static readonly HashSet<string> Features = new(StringComparer.OrdinalIgnoreCase)
    {
        // Without this flag a Hangfire 1.8 server asks for the obsolete GetComponents and never runs the expiration manager.
        JobStorageFeatures.ProcessesInsteadOfComponents,
        JobStorageFeatures.ExtendedApi,
        JobStorageFeatures.JobQueueProperty,
        JobStorageFeatures.Connection.GetUtcDateTime,
        JobStorageFeatures.Connection.GetSetContains,
        JobStorageFeatures.Connection.LimitedGetSetCount,
        JobStorageFeatures.Connection.BatchedGetFirstByLowest,
        "BatchedGetFirstByLowestScoreFromSet", // the name Hangfire 1.7 asked for; InMemory still answers it
        JobStorageFeatures.Transaction.AcquireDistributedLock,
        JobStorageFeatures.Transaction.CreateJob,
        JobStorageFeatures.Transaction.SetJobParameter,
        JobStorageFeatures.Transaction.RemoveFromQueue(typeof(LiteFetchedJob)),
        JobStorageFeatures.Monitoring.DeletedStateGraphs,
        JobStorageFeatures.Monitoring.AwaitingJobs,
    };

    private readonly FileStream _lockFile;
    private readonly LiteDatabase _db;
    private readonly object _writeGate = new();
    private readonly Dictionary<string, FairQueueIndex> _fairQueues;
    private readonly List<Action> _afterCommit = [];
    private readonly HashSet<string> _pausedQueues = new(StringComparer.Ordinal);
    private volatile bool _disposed;
    private long _lastJobId;
    private long _commits;
    // The write whose rollback failed too (a full disk): named as the cause of every later write, refused, so that a
    // full disk is still answered as one (507).
    private Exception? _failedWrite;

    /// <summary>
    /// Log pages after which a commit first copies the log into the data file and flushes it (LiteDB's default is
    /// 1,000). Every submit commits a few pages, mostly the same ones again (the newest job, state and queue pages), so
    /// under a burst of submits a third of the storage's write time went to these checkpoints (dotnet-trace,
    /// BENCHMARKS.md "Issue 15"): ten times fewer copy each rewritten page once per 40 MB of log, not once per 4 MB.
    /// A commit is as durable as before: its pages are in the log when it returns.
    /// </summary>
    internal const int CheckpointPages = 10_000;

    /// <summary>Opens (or creates) the database at <paramref name="path"/> and takes its lock file.</summary>
    /// <exception cref="StorageInUseException">Another storage, in this or another process, holds the database.</exception>
    public LiteDbStorage(string path, LiteDbStorageOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        Options = options ?? new LiteDbStorageOptions();
        Options.Validate();
        Path = System.IO.Path.GetFullPath(path);
        _fairQueues = Options.FairQueues.Distinct(StringComparer.Ordinal).ToDictionary(q => q, q => new FairQueueIndex(() => FairQueueChanged?.Invoke(q)), StringComparer.Ordinal);
        _lockFile = TakeLockFile(Path);
        try
        {
            // Direct mode does not stop a second process from opening the file; the lock file above does.
            // Hangfire values are stored as given: LiteDB's defaults would trim them and turn "" into null.
            var mapper = new BsonMapper { TrimWhitespace = false, EmptyStringToNull = false };
            _db = NewBie.Host.Storage.DrainingLiteEngine.Open(new LiteDB.Engine.EngineSettings { Filename = Path }, mapper);
            _db.UtcDate = true;
            _db.CheckpointSize = CheckpointPages;
            Jobs = _db.GetCollection<JobDocument>("hf_job", BsonAutoId.Int64);
            States = _db.GetCollection<StateDocument>("hf_state", BsonAutoId.Int64);
            Queue = _db.GetCollection<QueueDocument>("hf_queue", BsonAutoId.Int64);
            Fair = _db.GetCollection<FairDocument>("hf_fair");
            Sets = _db.GetCollection<SetDocument>("hf_set");
            Hashes = _db.GetCollection<HashDocument>("hf_hash");
            Lists = _db.GetCollection<ListDocument>("hf_list", BsonAutoId.Int64);
            Counters = _db.GetCollection<CounterDocument>("hf_counter");
            Servers = _db.GetCollection<ServerDocument>("hf_server");
            Sequences = _db.GetCollection<SequenceDocument>("hf_sequence");
            EnsureIndexes();
            _lastJobId = Math.Max(Sequences.FindById("job")?.Value ?? 0, Jobs.Query().OrderByDescending(j => j.Id).Limit(1).FirstOrDefault()?.Id ?? 0);
            RecoverFetchedJobs();
            LoadFairQueues();
        }
        catch
        {
            _db?.Dispose();
            _lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Raised with the queue's name after every committed change of a fair queue (a job added, claimed, removed,
    /// returned or re-prioritised), under the write gate: handlers must be quick and must not write to the storage.
    /// </summary>
    public event Action<string>? FairQueueChanged;

    /// <summary>Full path of the database file.</summary>
    public string Path { get; }

    /// <summary>The settings this storage was opened with.</summary>
    public LiteDbStorageOptions Options { get; }

    internal ILiteCollection<JobDocument> Jobs { get; }
    internal ILiteCollection<StateDocument> States { get; }
    internal ILiteCollection<QueueDocument> Queue { get; }
    internal ILiteCollection<FairDocument> Fair { get; }
    internal ILiteCollection<SetDocument> Sets { get; }
    internal ILiteCollection<HashDocument> Hashes { get; }
    internal ILiteCollection<ListDocument> Lists { get; }
    internal ILiteCollection<CounterDocument> Counters { get; }
    internal ILiteCollection<ServerDocument> Servers { get; }
    internal ILiteCollection<SequenceDocument> Sequences { get; }
    internal DistributedLocks Locks { get; } = new();
    internal QueueSignal Signal { get; } = new();
    internal bool IsDisposed => _disposed;

    /// <summary>Write transactions committed since the file was opened: what the tests count a new job's commits and the worker's path between two jobs by.</summary>
    internal long Commits => Interlocked.Read(ref _commits);

    /// <summary>One process owns the file, so every read sees every committed write.</summary>
    public override bool LinearizableReads => true;

    public override IStorageConnection GetConnection() => new LiteDbConnection(this);

    public override IMonitoringApi GetMonitoringApi() => new LiteDbMonitoringApi(this);

    public override bool HasFeature([NotNull] string featureId)
    {
        ArgumentNullException.ThrowIfNull(featureId);
        return Features.Contains(featureId) || base.HasFeature(featureId);
    }

    public override IEnumerable<IBackgroundProcess> GetStorageWideProcesses()
    {
        yield return new ExpirationManager(this);
    }

    public override string ToString() => $"LiteDB job storage at {Path}";

    /// <summary>
    /// The unfetched jobs of <paramref name="queue"/> in the order they will be claimed if nothing else arrives:
    /// <see cref="FairOrder"/> for the fair queues, FIFO otherwise. Index 0 runs next.
    /// </summary>
    public IReadOnlyList<FairQueueEntry> GetFairQueue(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_fairQueues.TryGetValue(queue, out var index)) return index.Snapshot().Pending;
        lock (_writeGate) return Queue.Find(q => q.Queue == queue && q.FetchedAt == null).OrderBy(r => r.Id).Select(ToEntry).ToList();
    }

    /// <summary>
    /// The claim order of a fair queue with its version, from memory: computed once per change of the queue and shared
    /// by every reader, so reading it costs nothing that grows with the backlog.
    /// </summary>
    public FairQueueSnapshot GetFairQueueSnapshot(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return _fairQueues.TryGetValue(queue, out var index)
            ? index.Snapshot()
            : throw new ArgumentException($"'{queue}' is not a fair queue of this storage.", nameof(queue));
    }

    /// <summary>The version <see cref="GetFairQueueSnapshot"/> would have now, without deriving the claim order.</summary>
    public long GetFairQueueVersion(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return _fairQueues.TryGetValue(queue, out var index)
            ? index.Version
            : throw new ArgumentException($"'{queue}' is not a fair queue of this storage.", nameof(queue));
    }

    /// <summary>The ids of the jobs of <paramref name="queue"/> that a worker has fetched and not yet acknowledged.</summary>
    public IReadOnlyList<string> GetFetchedJobIds(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return Queue.Find(q => q.Queue == queue && q.FetchedAt != null).OrderBy(q => q.FetchedAt).Select(q => JobKey(q.JobId)).ToList();
    }

    public void Dispose()
    {
        lock (_writeGate)
        {
            if (_disposed) return;
            _disposed = true;
            _db.Dispose();
            _lockFile.Dispose();
        }
        Signal.RaiseAll();
    }

    internal bool IsFair(string queue) => _fairQueues.ContainsKey(queue);

    /// <summary>
    /// Raised with a fetcher's queues each time it looked and found nothing it may claim (they are empty or paused), just
    /// before it waits for a signal or the poll interval: the moment a worker is known to be idle. Handlers must be quick
    /// and must not write to the storage.
    /// </summary>
    internal event Action<string[]>? FetcherWaiting;

    internal void RaiseFetcherWaiting(string[] queues) => FetcherWaiting?.Invoke(queues);

    internal FairQueueIndex? FairIndex(string queue) => _fairQueues.GetValueOrDefault(queue);

    /// <summary>
    /// Runs <paramref name="action"/> once the current <see cref="Write{T}"/> committed (still under the write gate),
    /// never if it rolls back: how the in-memory fair queues follow the stored rows exactly.
    /// </summary>
    internal void AfterCommit(Action action) => _afterCommit.Add(action);

    /// <summary>Forgets a job's unfetched rows in the fair queues; runs inside a write, applied after its commit.</summary>
    internal void ForgetQueued(long jobId)
    {
        var key = JobKey(jobId);
        AfterCommit(() =>
        {
            foreach (var index in _fairQueues.Values) index.RemoveJob(key);
        });
    }

    /// <summary>
    /// Stops workers from claiming jobs of <paramref name="queue"/> (those already fetched run on); the jobs stay
    /// queued in order. Held in memory: a restart resumes every queue.
    /// </summary>
    public void PauseQueue(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        lock (_writeGate) _pausedQueues.Add(queue);
    }

    public void ResumeQueue(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        lock (_writeGate) _pausedQueues.Remove(queue);
        // Fetchers sleeping on the signal would otherwise wait for the next enqueue or poll.
        Signal.Raise(queue);
    }

    public bool IsQueuePaused(string queue)
    {
        lock (_writeGate) return _pausedQueues.Contains(queue);
    }

    /// <summary>Changes the priority of a job still waiting in <paramref name="queue"/>; false once it was fetched or is gone.</summary>
    public bool SetQueuedPriority(string queue, string jobId, int priority)
    {
        ArgumentNullException.ThrowIfNull(queue);
        if (!TryParseJobId(jobId, out var id)) return false;
        return Write(() =>
        {
            var row = Queue.FindOne(q => q.Queue == queue && q.JobId == id && q.FetchedAt == null);
            if (row == null) return false;
            row.Priority = priority;
            Queue.Update(row);
            if (FairIndex(queue) is { } index) AfterCommit(() => index.SetPriority(row.Id, priority));
            return true;
        });
    }

    /// <summary>Runs <paramref name="work"/> as one atomic LiteDB transaction, alone among writers.</summary>
    internal T Write<T>(Func<T> work)
    {
        lock (_writeGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // LiteDB transactions belong to the calling thread: everything between BeginTrans and Commit is synchronous.
            // After a write whose rollback failed, LiteDB keeps that transaction open with its collection locks: a write
            // here would wait a minute for them, under this gate, so every later write is refused at once, naming the cause.
            if (_failedWrite is { } earlier)
                throw new InvalidOperationException("hangfire.db refuses writes since a write failed and could not be rolled back; restart the server.", earlier);
            if (!_db.BeginTrans()) throw new InvalidOperationException("A LiteDB transaction is already open on this thread.");
            _afterCommit.Clear();
            T result;
            try
            {
                result = work();
                _db.Commit();
                Interlocked.Increment(ref _commits);
            }
            catch (Exception failed)
            {
                _afterCommit.Clear();
                _failedWrite = LiteDbTransactions.RollBack(_db, failed) ?? _failedWrite;
                throw;
            }
            foreach (var action in _afterCommit) action();
            _afterCommit.Clear();
            return result;
        }
    }

    internal void Write(Action work) => Write(() => { work(); return 0; });

    /// <summary>
    /// A fresh job id, from memory: the id is stored with the job, in the job's own transaction (<see cref="InsertJobs"/>),
    /// so creating a job costs one commit. An id whose job never commits is skipped; one that did is never reused, even
    /// after the newest job expired and the file was reopened (the stored sequence only grows).
    /// </summary>
    internal long NextJobId() => Interlocked.Increment(ref _lastJobId);

    /// <summary>Inserts jobs and records the newest id in the stored sequence (once for them all); runs inside a write.</summary>
    internal void InsertJobs(IReadOnlyCollection<JobDocument> jobs)
    {
        Jobs.Insert(jobs);
        var newest = jobs.Max(j => j.Id);
        var sequence = Sequences.FindById("job") ?? new SequenceDocument { Id = "job" };
        if (sequence.Value >= newest) return;
        sequence.Value = newest;
        Sequences.Upsert(sequence);
    }

    /// <summary>
    /// Claims the next unfetched row of the first of <paramref name="queues"/> that has one, or returns null.
    /// For a fair queue the served counter and the user's last-served tick move in the same transaction.
    /// </summary>
    internal QueueDocument? TryClaim(string[] queues) => !queues.Any(MayHaveWork) ? null : Write(() =>
    {
        foreach (var queue in queues)
        {
            if (_pausedQueues.Contains(queue)) continue;
            if (FairIndex(queue) is { } index)
            {
                if (ClaimFair(queue, index) is { } claimed) return claimed;
                continue;
            }
            var next = Queue.Find(q => q.Queue == queue && q.FetchedAt == null).OrderBy(r => r.Id).FirstOrDefault();
            if (next == null) continue;
            return MarkFetched(next);
        }
        return null;
    });

    // Looked at outside the write gate, so that a fetcher woken by an enqueue it cannot take (its fair queue paused, say,
    // while a burst of submits fills it) does not open a write transaction per wake-up.
    private bool MayHaveWork(string queue)
    {
        if (FairIndex(queue) is not { } index) return true;
        lock (_writeGate) if (_pausedQueues.Contains(queue)) return false;
        return index.HasPending;
    }

    // The head of the in-memory claim order; its user's served tick moves in the claim's own transaction.
    private QueueDocument? ClaimFair(string queue, FairQueueIndex index)
    {
        if (index.Next() is not { } rowId) return null;
        var next = Queue.FindById(rowId);
        if (next == null || next.FetchedAt != null)
            throw new InvalidOperationException($"The fair queue '{queue}' lost track of its row {rowId}; its memory no longer matches the database.");
        var counter = index.Counter + 1;
        Fair.Upsert(new FairDocument { Id = CounterKey(queue), Value = counter });
        Fair.Upsert(new FairDocument { Id = ServedKey(queue, next.UserId), Value = counter });
        AfterCommit(() => index.Claimed(rowId, counter));
        return MarkFetched(next);
    }

    private QueueDocument MarkFetched(QueueDocument row)
    {
        row.FetchedAt = DateTime.UtcNow;
        row.FetchToken = Guid.NewGuid().ToString("N");
        Queue.Update(row);
        return row;
    }

    /// <summary>Deletes everything whose expiry has passed; returns how many records went.</summary>
    internal int RemoveExpired(DateTime now) => Write(() =>
    {
        var removed = 0;
        foreach (var job in Jobs.Find(j => j.ExpireAt != null && j.ExpireAt < now).ToList())
        {
            States.DeleteMany(s => s.JobId == job.Id);
            Queue.DeleteMany(q => q.JobId == job.Id);
            ForgetQueued(job.Id);
            removed += Jobs.Delete(job.Id) ? 1 : 0;
        }
        removed += Sets.DeleteMany(s => s.ExpireAt != null && s.ExpireAt < now);
        removed += Hashes.DeleteMany(h => h.ExpireAt != null && h.ExpireAt < now);
        removed += Lists.DeleteMany(l => l.ExpireAt != null && l.ExpireAt < now);
        removed += Counters.DeleteMany(c => c.ExpireAt != null && c.ExpireAt < now);
        return removed;
    });

    internal static string JobKey(long id) => id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Parses a Hangfire job id of this storage; anything else names no job here.</summary>
    internal static bool TryParseJobId(string? id, out long value) =>
        long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value);

    internal static FairQueueEntry ToEntry(QueueDocument row) => new(JobKey(row.JobId), row.UserId, row.Priority, row.Seq, row.Ref);

    private static string CounterKey(string queue) => $"counter|{queue}";

    private static string ServedKey(string queue, string user) => $"served|{queue}|{user}";

    private static FileStream TakeLockFile(string path)
    {
        var lockPath = path + ".lock";
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(lockPath)!);
            return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new StorageInUseException(
                $"The job database '{path}' is in use by another NewBie process (or another LiteDbStorage in this one): " +
                $"its lock file '{lockPath}' is held. One process per database; stop the other one or use another data directory.", e);
        }
    }

    private void EnsureIndexes()
    {
        Jobs.EnsureIndex(j => j.StateName);
        Jobs.EnsureIndex(j => j.ExpireAt);
        States.EnsureIndex(s => s.JobId);
        Queue.EnsureIndex(q => q.Queue);
        Queue.EnsureIndex(q => q.JobId);
        Sets.EnsureIndex(s => s.Key);
        Sets.EnsureIndex(s => s.ExpireAt);
        Hashes.EnsureIndex(h => h.Key);
        Hashes.EnsureIndex(h => h.ExpireAt);
        Lists.EnsureIndex(l => l.Key);
        Lists.EnsureIndex(l => l.ExpireAt);
        Counters.EnsureIndex(c => c.ExpireAt);
    }

    private void LoadFairQueues()
    {
        foreach (var (queue, index) in _fairQueues)
        {
            var rows = Queue.Find(q => q.Queue == queue && q.FetchedAt == null).Select(r => (r.Id, ToEntry(r)));
            var prefix = ServedKey(queue, "");
            var served = Fair.Find(f => f.Id.StartsWith(prefix)).Select(f => KeyValuePair.Create(f.Id[prefix.Length..], f.Value));
            index.Load(rows, served, Fair.FindById(CounterKey(queue))?.Value ?? 0);
        }
    }

    // The lock file is ours, so whoever fetched these rows is dead: hand them out again now rather than after a timeout.
    private void RecoverFetchedJobs() => Write(() =>
    {
        foreach (var row in Queue.Find(q => q.FetchedAt != null).ToList())
        {
            row.FetchedAt = null;
            row.FetchToken = null;
            Queue.Update(row);
        }
    });
}

/// <summary>Hangfire configuration entry point for <see cref="LiteDbStorage"/>.</summary>
public static class LiteDbStorageExtensions
{
    /// <summary>Makes <paramref name="storage"/> the job storage of this Hangfire configuration.</summary>
    public static IGlobalConfiguration<LiteDbStorage> UseLiteDbStorage(this IGlobalConfiguration configuration, LiteDbStorage storage)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(storage);
        return configuration.UseStorage(storage);
    }
}
