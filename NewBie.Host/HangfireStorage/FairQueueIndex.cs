namespace NewBie.Host.HangfireStorage;

/// <summary>
/// A fair queue's unclaimed jobs in their claim order at one moment. <see cref="Version"/> changes with every change
/// of the queue, so a reader can tell whether what it derived from an earlier snapshot is still true. The order is
/// kept as derived at <see cref="DerivedAt"/> plus the entries added since, each placed without deriving again
/// (<see cref="FairOrderPlacement"/>): a reader that joined <see cref="Derived"/> once joins only <see cref="Added"/>.
/// </summary>
public sealed class FairQueueSnapshot
{
    private readonly FairQueueEntry[] _order;
    private readonly int _head;
    private readonly PlacedEntry[] _added;
    private FairQueueEntry[]? _merged;

    internal FairQueueSnapshot(long version, FairQueueEntry[] order, int head, long? derivedAt = null, PlacedEntry[]? added = null)
    {
        Version = version;
        DerivedAt = derivedAt ?? version;
        _order = order;
        _head = head;
        _added = added ?? [];
    }

    public long Version { get; }

    /// <summary>The version <see cref="Derived"/> was derived at: two snapshots with the same one share it.</summary>
    public long DerivedAt { get; }

    /// <summary>The claim order as derived, without <see cref="Added"/>. Index 0 runs next.</summary>
    public IReadOnlyList<FairQueueEntry> Derived => new ArraySegment<FairQueueEntry>(_order, _head, _order.Length - _head);

    /// <summary>The entries added since <see cref="DerivedAt"/>, in claim order.</summary>
    public IReadOnlyList<PlacedEntry> Added => _added;

    /// <summary>Everything in claim order. Index 0 runs next.</summary>
    public IReadOnlyList<FairQueueEntry> Pending => _added.Length == 0 ? Derived : Volatile.Read(ref _merged) ?? Merge();

    internal FairQueueSnapshot Advance(long version) =>
        _added.Length == 0 ? new(version, _order, _head + 1) : new(version, [.. Pending.Skip(1)], 0);

    /// <summary>This order with <paramref name="placed"/> in its place, at <paramref name="version"/>.</summary>
    internal FairQueueSnapshot With(long version, PlacedEntry placed)
    {
        var at = Array.BinarySearch(_added, placed);
        var added = new PlacedEntry[_added.Length + 1];
        at = ~at;
        Array.Copy(_added, added, at);
        added[at] = placed;
        Array.Copy(_added, at, added, at + 1, _added.Length - at);
        return new FairQueueSnapshot(version, _order, _head, DerivedAt, added);
    }

    private FairQueueEntry[] Merge()
    {
        var merged = new FairQueueEntry[_order.Length - _head + _added.Length];
        var (n, a) = (0, 0);
        for (var i = _head; i <= _order.Length; i++)
        {
            while (a < _added.Length && _added[a].DerivedAhead <= i - _head) merged[n++] = _added[a++].Entry;
            if (i < _order.Length) merged[n++] = _order[i];
        }
        Volatile.Write(ref _merged, merged);
        return merged;
    }
}

/// <summary>
/// The unclaimed rows of one fair queue and its served counters, held in memory beside the database so that neither
/// a claim nor a reader replays the fair order from stored rows. Changed only after the transaction that changed the
/// rows committed (under the storage's write gate); the claim order is computed at most once per change, when first
/// asked for; a new row is placed into the order in O(users) where that leaves the rest of the order true (at most
/// <see cref="MaxAdded"/> of them between derivations), and a claim of the predicted head only moves the head.
/// </summary>
internal sealed class FairQueueIndex(Action changed)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<long, FairQueueEntry> _rows = [];
    private readonly Dictionary<FairQueueEntry, long> _rowIdOf = new(ReferenceEqualityComparer.Instance);
    // A cancel finds its job's rows without a walk of the whole queue (a job has one row here, in principle).
    private readonly Dictionary<string, HashSet<long>> _rowsOfJob = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _served = new(StringComparer.Ordinal);
    private long _counter;
    private long _version;
    private FairQueueSnapshot _order = new(0, [], 0);
    private FairOrderPlacement? _placement;

    /// <summary>
    /// How many rows are placed into a derived order before it is derived again: a submit costs O(this) to place and
    /// to join, and a derivation's O(queued) is shared by this many submits.
    /// </summary>
    internal const int MaxAdded = 256;

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
            _rowsOfJob.Clear();
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
            var current = _order.Version == _version;
            Put(rowId, entry);
            _version++;
            if (current && _placement is not null && _order.Added.Count < MaxAdded && _placement.Place(entry) is { } placed)
                _order = _order.With(_version, placed);
        }
        changed();
    }

    public void RemoveJob(string jobId)
    {
        lock (_gate)
        {
            if (!_rowsOfJob.TryGetValue(jobId, out var rowIds)) return;
            foreach (var rowId in rowIds.ToArray()) Remove(rowId);
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
            // The served ticks moved: placing needs a fresh derivation.
            _placement = null;
        }
        changed();
    }

    public FairQueueSnapshot Snapshot()
    {
        lock (_gate)
        {
            if (_order.Version == _version) return _order;
            _placement = FairOrder.Derive(_rows.Values, _served, _counter);
            _order = new FairQueueSnapshot(_version, _placement.Order, 0);
            return _order;
        }
    }

    private void Put(long rowId, FairQueueEntry entry)
    {
        Remove(rowId);
        _rows[rowId] = entry;
        _rowIdOf[entry] = rowId;
        if (!_rowsOfJob.TryGetValue(entry.JobId, out var rowIds)) _rowsOfJob[entry.JobId] = rowIds = [];
        rowIds.Add(rowId);
    }

    private void Remove(long rowId)
    {
        if (!_rows.Remove(rowId, out var entry)) return;
        _rowIdOf.Remove(entry);
        if (_rowsOfJob.TryGetValue(entry.JobId, out var rowIds) && rowIds.Remove(rowId) && rowIds.Count == 0) _rowsOfJob.Remove(entry.JobId);
    }
}
