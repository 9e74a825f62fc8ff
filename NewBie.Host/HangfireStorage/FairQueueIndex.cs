namespace NewBie.Host.HangfireStorage;

/// <summary>
/// A fair queue's unclaimed jobs in their claim order at one moment. <see cref="Version"/> changes with every change
/// of the queue, so a reader can tell whether what it derived from an earlier snapshot is still true.
/// </summary>
public sealed class FairQueueSnapshot
{
    private readonly FairQueueEntry[] _order;
    private readonly int _head;

    internal FairQueueSnapshot(long version, FairQueueEntry[] order, int head)
    {
        Version = version;
        _order = order;
        _head = head;
    }

    public long Version { get; }

    /// <summary>Index 0 runs next.</summary>
    public IReadOnlyList<FairQueueEntry> Pending => new ArraySegment<FairQueueEntry>(_order, _head, _order.Length - _head);

    internal FairQueueSnapshot Advance(long version) => new(version, _order, _head + 1);
}

/// <summary>
/// The unclaimed rows of one fair queue and its served counters, held in memory beside the database so that neither
/// a claim nor a reader replays the fair order from stored rows. Changed only after the transaction that changed the
/// rows committed (under the storage's write gate); the claim order is computed at most once per change, when first
/// asked for, and a claim of the predicted head only moves the head, because the rest of the prediction stays true.
/// </summary>
internal sealed class FairQueueIndex(Action changed)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, FairQueueEntry> _rows = [];
    private readonly Dictionary<FairQueueEntry, long> _rowIdOf = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, long> _served = new(StringComparer.Ordinal);
    private long _counter;
    private long _version;
    private FairQueueSnapshot _order = new(0, [], 0);

    /// <summary>Moves with every change; what <see cref="Snapshot"/> would be derived at, without deriving it.</summary>
    public long Version
    {
        get { lock (_gate) return _version; }
    }

    /// <summary>Whether any row waits to be claimed.</summary>
    public bool HasPending
    {
        get { lock (_gate) return _rows.Count > 0; }
    }

    public long Counter
    {
        get { lock (_gate) return _counter; }
    }

    public void Load(IEnumerable<(long RowId, FairQueueEntry Entry)> rows, IEnumerable<KeyValuePair<string, long>> served, long counter)
    {
        lock (_gate)
        {
            _rows.Clear();
            _rowIdOf.Clear();
            foreach (var (rowId, entry) in rows) Put(rowId, entry);
            _served.Clear();
            foreach (var (user, tick) in served) _served[user] = tick;
            _counter = counter;
            _version++;
        }
        changed();
    }

    public void Add(long rowId, FairQueueEntry entry)
    {
        lock (_gate)
        {
            Put(rowId, entry);
            _version++;
        }
        changed();
    }

    public void RemoveJob(string jobId)
    {
        lock (_gate)
        {
            var gone = _rows.Where(r => r.Value.JobId == jobId).Select(r => r.Key).ToList();
            foreach (var rowId in gone) Remove(rowId);
            if (gone.Count == 0) return;
            _version++;
        }
        changed();
    }

    public void SetPriority(long rowId, int priority)
    {
        lock (_gate)
        {
            if (!_rows.TryGetValue(rowId, out var entry)) return;
            Remove(rowId);
            Put(rowId, entry with { Priority = priority });
            _version++;
        }
        changed();
    }

    /// <summary>The row to claim next, or null when none is pending.</summary>
    public long? Next()
    {
        lock (_gate)
        {
            var pending = Snapshot().Pending;
            return pending.Count == 0 ? null : _rowIdOf[pending[0]];
        }
    }

    /// <summary>Takes a claimed row out and records its user as served at <paramref name="tick"/>.</summary>
    public void Claimed(long rowId, long tick)
    {
        lock (_gate)
        {
            if (!_rows.TryGetValue(rowId, out var entry)) return;
            var current = _order.Version == _version && _order.Pending.Count > 0 && ReferenceEquals(_order.Pending[0], entry);
            Remove(rowId);
            _served[entry.UserId] = tick;
            _counter = tick;
            _version++;
            if (current) _order = _order.Advance(_version);
        }
        changed();
    }

    public FairQueueSnapshot Snapshot()
    {
        lock (_gate)
        {
            if (_order.Version != _version) _order = new FairQueueSnapshot(_version, FairOrder.Order(_rows.Values, _served, _counter), 0);
            return _order;
        }
    }

    private void Put(long rowId, FairQueueEntry entry)
    {
        if (_rows.Remove(rowId, out var old)) _rowIdOf.Remove(old);
        _rows[rowId] = entry;
        _rowIdOf[entry] = rowId;
    }

    private void Remove(long rowId)
    {
        if (_rows.Remove(rowId, out var entry)) _rowIdOf.Remove(entry);
    }
}
