using System.Collections.Concurrent;

namespace NewBie.Host.Jobs;

/// <summary>
/// Job records as last read from the store, by id, for <see cref="JobStore.Find"/>: a status read of a known job costs a
/// dictionary lookup instead of a LiteDB query (measured under wrk: that query, with its snapshot, its collection
/// page's seven index expressions parsed again and the record's mapping, was a fifth of a status read's server time).
/// Used only where <see cref="JobStore"/> is the records' one writer (embedded mode), which calls
/// <see cref="Changed"/> after each write it commits: the entry goes and the next read reads the store again. A read
/// that began before such a write does not keep its (maybe older) record (<see cref="Generation"/>). The records
/// handed out are shared: callers read them and never change them (changes go through <see cref="JobStore.Update"/>,
/// which reads its own copy).
/// </summary>
internal sealed class SavedRecords
{
    // Enough for every queued and running job of a deep queue and the recently read finished ones; past it, starting
    // over costs one store read per job read again.
    internal const int Capacity = 20_000;

    // Read without the lock (every status read); replaced, not cleared, under it.
    private readonly Lock _gate = new();
    private ConcurrentDictionary<string, JobRecord> _records = new(StringComparer.Ordinal);
    private long _generation;

    /// <summary>Moves with every write: what a read takes before it reads the store, to hand to <see cref="Keep"/>.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    public JobRecord? Find(string id) => Volatile.Read(ref _records).TryGetValue(id, out var job) ? job : null;

    /// <summary>Keeps a record read from the store, unless a write came after <paramref name="readAt"/>.</summary>
    public void Keep(JobRecord job, long readAt)
    {
        lock (_gate)
        {
            if (readAt != _generation) return;
            if (_records.Count >= Capacity) Volatile.Write(ref _records, new(StringComparer.Ordinal));
            _records[job.Id] = job;
        }
    }

    /// <summary>After a committed write of the job's record (changed or deleted).</summary>
    public void Changed(string id)
    {
        lock (_gate)
        {
            Interlocked.Increment(ref _generation);
            _records.TryRemove(id, out _);
        }
    }
}
