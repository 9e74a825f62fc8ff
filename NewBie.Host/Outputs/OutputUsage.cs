namespace NewBie.Host.Outputs;

/// <summary>
/// Bytes kept per user, measured by one listing and then moved by every write and delete of this process, so the
/// storage cap costs a dictionary read per submit instead of a walk of the user's outputs. A measurement is trusted for
/// <c>refreshAfter</c> (other nodes write to a shared store too); one that raced a write or delete is not kept.
/// </summary>
internal sealed class OutputUsage(TimeProvider time, TimeSpan refreshAfter)
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

    public async Task<long> BytesAsync(string userId, Func<Task<long>> measure)
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

    public void Add(string userId, long delta)
    {
        lock (_gate)
        {
            var entry = EntryOf(userId);
            entry.Version++;
            if (entry.Bytes is { } bytes) entry.Bytes = Math.Max(0, bytes + delta);
        }
    }

    private Entry EntryOf(string userId)
    {
        if (!_of.TryGetValue(userId, out var entry)) _of[userId] = entry = new Entry();
        return entry;
    }
}
