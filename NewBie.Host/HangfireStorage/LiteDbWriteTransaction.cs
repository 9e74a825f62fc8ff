using System.Text.Json;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// Hangfire's write-only transaction: operations are recorded and run at <see cref="Commit"/> as one LiteDB
/// transaction, so either all of them become visible or, if any fails, none.
/// </summary>
internal sealed class LiteDbWriteTransaction(LiteDbStorage storage, LiteDbConnection connection) : JobStorageTransaction
{
    private readonly List<Action> _operations = [];
    private readonly List<IDisposable> _locks = [];
    private readonly List<LiteFetchedJob> _acknowledged = [];
    private readonly HashSet<string> _wakes = new(StringComparer.Ordinal);

    // The jobs this commit's operations create or touch, each read at most once and written once at the end of the commit:
    // a new job's creation, first state, queue row and persist otherwise read it four times and wrote it three (through
    // LiteDB's query engine each time), and the group commit of a submit burst runs them for hundreds of jobs in a row.
    private readonly Dictionary<long, JobDocument> _jobs = [];
    private readonly Dictionary<long, JobDocument> _created = [];
    private readonly HashSet<long> _changed = [];

    // Jobs

    public override string CreateJob(Job job, IDictionary<string, string> parameters, DateTime createdAt, TimeSpan expireIn)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(parameters);
        // Hangfire needs the id before Commit; an id whose job is never committed is simply skipped.
        var id = storage.NextJobId();
        var document = LiteDbConnection.NewJob(id, job, parameters, createdAt, expireIn);
        _operations.Add(() =>
        {
            _jobs[document.Id] = document;
            _created[document.Id] = document;
        });
        return LiteDbStorage.JobKey(id);
    }

    public override void SetJobParameter(string jobId, string name, string? value)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        ArgumentNullException.ThrowIfNull(name);
        _operations.Add(() =>
        {
            var job = FindJob(jobId) ?? throw new InvalidOperationException($"Background job '{jobId}' does not exist.");
            LiteDbConnection.SetParameter(job, name, value);
            _changed.Add(job.Id);
        });
    }

    public override void ExpireJob(string jobId, TimeSpan expireIn)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        _operations.Add(() => UpdateJob(jobId, job => job.ExpireAt = DateTime.UtcNow + expireIn));
    }

    public override void PersistJob(string jobId)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        _operations.Add(() => UpdateJob(jobId, job => job.ExpireAt = null));
    }

    public override void SetJobState(string jobId, IState state)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        ArgumentNullException.ThrowIfNull(state);
        _operations.Add(() =>
        {
            if (AppendState(jobId, state) is not { } history) return;
            UpdateJob(jobId, job =>
            {
                job.StateName = history.Name;
                job.StateReason = history.Reason;
                job.StateData = history.Data;
                job.StateAt = history.CreatedAt;
            });
            // A job that is finished, failed or deleted must not be handed out, nor counted in queue positions.
            if (state.IsFinal || state.Name == FailedState.StateName || state.Name == DeletedState.StateName)
            {
                var id = history.JobId;
                if (storage.Queue.DeleteMany(q => q.JobId == id && q.FetchedAt == null) > 0) storage.ForgetQueued(id);
            }
        });
    }

    public override void AddJobState(string jobId, IState state)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        ArgumentNullException.ThrowIfNull(state);
        _operations.Add(() => AppendState(jobId, state));
    }

    // Queues

    public override void AddToQueue(string queue, string jobId)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(jobId);
        _wakes.Add(queue);
        var id = LiteDbStorage.TryParseJobId(jobId, out var parsed) ? parsed : throw new ArgumentException($"'{jobId}' is not a job id of this storage.", nameof(jobId));
        _operations.Add(() =>
        {
            // A job that expired meanwhile still gets its row, as in the SQL storages: the worker then finds no job
            // data and drops the row, instead of this whole commit (say, the scheduler's) failing.
            var row = new QueueDocument { Queue = queue, JobId = id, UserId = "", Priority = 1, Seq = id, EnqueuedAt = DateTime.UtcNow };
            if (storage.IsFair(queue) && FindJob(id) is { } job) CopyFairParameters(LiteDbConnection.ReadDictionary(job.Parameters), row);
            storage.Queue.Insert(row);
            if (storage.FairIndex(queue) is { } index) storage.AfterCommit(() => index.Add(row.Id, LiteDbStorage.ToEntry(row)));
        });
    }

    public override void RemoveFromQueue(IFetchedJob fetchedJob)
    {
        ArgumentNullException.ThrowIfNull(fetchedJob);
        if (fetchedJob is not LiteFetchedJob fetched || !ReferenceEquals(fetched.Storage, storage))
            throw new NotSupportedException($"Only jobs fetched from this storage can be acknowledged in its transactions, not {fetchedJob.GetType().Name}.");
        _operations.Add(() => fetched.DeleteRow(storage));
        _acknowledged.Add(fetched);
    }

    // Counters

    public override void IncrementCounter(string key) => AddToCounter(key, +1, null);

    public override void IncrementCounter(string key, TimeSpan expireIn) => AddToCounter(key, +1, expireIn);

    public override void DecrementCounter(string key) => AddToCounter(key, -1, null);

    public override void DecrementCounter(string key, TimeSpan expireIn) => AddToCounter(key, -1, expireIn);

    // Sets

    public override void AddToSet(string key, string value) => AddToSet(key, value, 0.0);

    public override void AddToSet(string key, string value, double score)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _operations.Add(() =>
        {
            var item = storage.Sets.FindById(SetId(key, value)) ?? new SetDocument { Id = SetId(key, value), Key = key, Value = value };
            item.Score = score;
            storage.Sets.Upsert(item);
        });
    }

    public override void AddRangeToSet(string key, IList<string> items)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(items);
        foreach (var item in items.ToList()) AddToSet(key, item, 0.0);
    }

    public override void RemoveFromSet(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        _operations.Add(() => storage.Sets.Delete(SetId(key, value)));
    }

    public override void RemoveSet(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() => storage.Sets.DeleteMany(s => s.Key == key));
    }

    public override void ExpireSet(string key, TimeSpan expireIn) => ExpireKey(storage.Sets, key, s => s.Key == key, (s, at) => s.ExpireAt = at, expireIn);

    public override void PersistSet(string key) => ExpireKey(storage.Sets, key, s => s.Key == key, (s, at) => s.ExpireAt = at, null);

    // Lists (newest first)

    public override void InsertToList(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() => storage.Lists.Insert(new ListDocument { Key = key, Value = value }));
    }

    public override void RemoveFromList(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() => storage.Lists.DeleteMany(l => l.Key == key && l.Value == value));
    }

    public override void TrimList(string key, int keepStartingFrom, int keepEndingAt)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() =>
        {
            var newestFirst = storage.Lists.Find(l => l.Key == key).OrderByDescending(l => l.Id).ToList();
            for (var index = 0; index < newestFirst.Count; index++)
            {
                if (index < keepStartingFrom || index > keepEndingAt) storage.Lists.Delete(newestFirst[index].Id);
            }
        });
    }

    public override void ExpireList(string key, TimeSpan expireIn) => ExpireKey(storage.Lists, key, l => l.Key == key, (l, at) => l.ExpireAt = at, expireIn);

    public override void PersistList(string key) => ExpireKey(storage.Lists, key, l => l.Key == key, (l, at) => l.ExpireAt = at, null);

    // Hashes

    public override void SetRangeInHash(string key, IEnumerable<KeyValuePair<string, string>> keyValuePairs)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(keyValuePairs);
        _operations.Add(() => SetHashFields(storage, key, keyValuePairs));
    }

    public override void RemoveHash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() => storage.Hashes.DeleteMany(h => h.Key == key));
    }

    public override void ExpireHash(string key, TimeSpan expireIn) => ExpireKey(storage.Hashes, key, h => h.Key == key, (h, at) => h.ExpireAt = at, expireIn);

    public override void PersistHash(string key) => ExpireKey(storage.Hashes, key, h => h.Key == key, (h, at) => h.ExpireAt = at, null);

    // Locks and commit

    public override void AcquireDistributedLock(string resource, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(resource);
        // Held by the connection (so re-entrant with its other locks) until the commit ends or the transaction is disposed.
        _locks.Add(storage.Locks.Acquire(resource, connection, timeout));
    }

    public override void Commit()
    {
        try
        {
            storage.Write(() =>
            {
                ForgetJobs();
                foreach (var operation in _operations) operation();
                if (_created.Count > 0) storage.InsertJobs(_created.Values);
                foreach (var id in _changed)
                    if (!_created.ContainsKey(id)) storage.Jobs.Update(_jobs[id]);
            });
        }
        finally
        {
            ForgetJobs();
            ReleaseLocks();
        }
        _operations.Clear();
        foreach (var fetched in _acknowledged) fetched.MarkSettled();
        // A paused queue's fetchers are woken by its resume instead: a burst of submits must not spin them.
        foreach (var queue in _wakes)
            if (!storage.IsQueuePaused(queue)) storage.Signal.Raise(queue);
    }

    public override void Dispose()
    {
        ForgetJobs();
        ReleaseLocks();
    }

    private void ForgetJobs()
    {
        _jobs.Clear();
        _created.Clear();
        _changed.Clear();
    }

    private void ReleaseLocks()
    {
        foreach (var held in _locks) held.Dispose();
        _locks.Clear();
    }

    internal static string SetId(string key, string value) => $"{key.Length}:{key}{value}";

    internal static string HashId(string key, string field) => $"{key.Length}:{key}{field}";

    internal static void SetHashFields(LiteDbStorage storage, string key, IEnumerable<KeyValuePair<string, string>> pairs)
    {
        foreach (var (field, value) in pairs)
        {
            ArgumentNullException.ThrowIfNull(field, nameof(pairs));
            var entry = storage.Hashes.FindById(HashId(key, field)) ?? new HashDocument { Id = HashId(key, field), Key = key, Field = field };
            entry.Value = value;
            storage.Hashes.Upsert(entry);
        }
    }

    private void AddToCounter(string key, long delta, TimeSpan? expireIn)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() =>
        {
            var counter = storage.Counters.FindById(key) ?? new CounterDocument { Id = key };
            counter.Value += delta;
            if (expireIn is { } ttl) counter.ExpireAt = DateTime.UtcNow + ttl;
            storage.Counters.Upsert(counter);
        });
    }

    private void ExpireKey<T>(LiteDB.ILiteCollection<T> collection, string key, System.Linq.Expressions.Expression<Func<T, bool>> ofKey, Action<T, DateTime?> setExpiry, TimeSpan? expireIn)
    {
        ArgumentNullException.ThrowIfNull(key);
        _operations.Add(() =>
        {
            DateTime? at = expireIn is { } ttl ? DateTime.UtcNow + ttl : null;
            foreach (var item in collection.Find(ofKey).ToList())
            {
                setExpiry(item, at);
                collection.Update(item);
            }
        });
    }

    /// <summary>The job as this commit has it so far (created or changed by its earlier operations), read once from storage.</summary>
    private JobDocument? FindJob(string jobId) => LiteDbStorage.TryParseJobId(jobId, out var id) ? FindJob(id) : null;

    private JobDocument? FindJob(long id)
    {
        if (_jobs.TryGetValue(id, out var job)) return job;
        job = storage.Jobs.FindById(id);
        if (job is not null) _jobs[id] = job;
        return job;
    }

    private void UpdateJob(string jobId, Action<JobDocument> change)
    {
        // Hangfire may touch a job that expired meanwhile; like the other storages, that is not an error.
        if (FindJob(jobId) is not { } job) return;
        change(job);
        _changed.Add(job.Id);
    }

    /// <summary>Adds a state to the job's history; null (and nothing written) when the job no longer exists.</summary>
    private StateDocument? AppendState(string jobId, IState state)
    {
        if (FindJob(jobId) is not { } job) return null;
        var id = job.Id;
        var history = new StateDocument
        {
            JobId = id,
            Name = state.Name,
            Reason = state.Reason,
            CreatedAt = DateTime.UtcNow,
            Data = JsonSerializer.Serialize(state.SerializeData() ?? new Dictionary<string, string>()),
        };
        storage.States.Insert(history);
        return history;
    }

    private static void CopyFairParameters(Dictionary<string, string?> parameters, QueueDocument row)
    {
        var place = FairQueueParameters.Read(parameters);
        if (place.UserId is { } user) row.UserId = user;
        if (place.Priority is { } priority) row.Priority = priority;
        if (place.Seq is { } seq) row.Seq = seq;
        row.Ref = place.Ref;
    }
}
