namespace NewBie.Host.Outputs;

/// <summary>
/// Bytes of outputs kept per user: what the per-user storage cap counts. Measured by a listing of the user's outputs when
/// there is no count yet, then moved by every write and delete (<see cref="OutputStore"/> calls it), so the cap costs a
/// read per submit instead of a walk of the user's outputs. The embedded mode counts in memory
/// (<see cref="InMemoryOutputUsage"/>); with PostgreSQL every node moves one shared count (Storage/Postgres/PostgresOutputUsage).
/// </summary>
public interface IOutputUsage
{
    /// <summary>The user's bytes; <paramref name="measure"/> lists the outputs when no count is trusted.</summary>
    Task<long> BytesAsync(string userId, Func<Task<long>> measure, CancellationToken cancellationToken);

    /// <summary>Moves the user's count by <paramref name="delta"/> bytes (written: more than 0; deleted: less), after the store changed.</summary>
    Task AddAsync(string userId, long delta);
}

/// <summary>
/// The count in this process's memory (the embedded mode: one process writes the outputs). A measurement is trusted for
/// <c>refreshAfter</c>, which catches outputs removed by hand; one that raced a write or delete is not kept.
/// </summary>
internal sealed class InMemoryOutputUsage(TimeProvider time, TimeSpan refreshAfter) : IOutputUsage
{
    private sealed class Entry
    {
        public long? Bytes;
        public DateTimeOffset MeasuredAt;
        /// <summary>Moves with every change, so that a measurement taken meanwhile is known to be stale.</summary>
        public long Version;
    }

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _of = new(StringComparer.Ordinal);

    public async Task<long> BytesAsync(string userId, Func<Task<long>> measure, CancellationToken cancellationToken)
    {
        long version;
        lock (_gate)
        {
            var entry = EntryOf(userId);
            if (entry.Bytes is { } bytes && time.GetUtcNow() - entry.MeasuredAt < refreshAfter) return bytes;
            version = entry.Version;
        }
        var measured = await measure();
        lock (_gate)
        {
            var entry = EntryOf(userId);
            if (entry.Version == version)
            {
                entry.Bytes = measured;
                entry.MeasuredAt = time.GetUtcNow();
            }
        }
        return measured;
    }

    public Task AddAsync(string userId, long delta)
    {
        lock (_gate)
        {
            var entry = EntryOf(userId);
            entry.Version++;
            if (entry.Bytes is { } bytes) entry.Bytes = Math.Max(0, bytes + delta);
        }
        return Task.CompletedTask;
    }

    private Entry EntryOf(string userId)
    {
        if (!_of.TryGetValue(userId, out var entry)) _of[userId] = entry = new Entry();
        return entry;
    }
}
