namespace NewBie.Host.HangfireStorage;

/// <summary>
/// One unclaimed job in a fair queue. Priority: higher runs first (2 = high, 1 = normal, 0 = low). Ref is the
/// caller's own reference to the job (the app's record id), copied from the job parameter "Ref", so that a queue
/// snapshot joins to the caller's data without reading Hangfire's jobs; null when the job has none.
/// </summary>
public sealed record FairQueueEntry(string JobId, string UserId, int Priority, long Seq, string? Ref = null);

/// <summary>
/// The fair-share policy (design.md §2), pure so that the storage's dequeue, queue positions and ETAs all use it:
/// highest priority class first; within it the least recently served user (a user never served counts as 0, ties
/// broken by who submitted first); within that user FIFO by submit sequence.
/// </summary>
public static class FairOrder
{
    /// <summary>The entry to claim next, or null when nothing is pending. The definition <see cref="Order"/> must agree with.</summary>
    public static FairQueueEntry? PickNext(IReadOnlyCollection<FairQueueEntry> pending, IReadOnlyDictionary<string, long> lastServed)
    {
        if (pending.Count == 0) return null;
        var top = pending.Max(e => e.Priority);
        return pending
            .Where(e => e.Priority == top)
            .GroupBy(e => e.UserId, StringComparer.Ordinal)
            .Select(g => (Head: g.MinBy(e => e.Seq)!, Served: lastServed.GetValueOrDefault(g.Key)))
            .OrderBy(u => u.Served)
            .ThenBy(u => u.Head.Seq)
            .First().Head;
    }

    /// <summary>
    /// The predicted claim order of everything pending: what PickNext applied repeatedly gives, advancing the served
    /// counter as the storage does after each claim, in O(n log users) rather than PickNext's O(n) per claim.
    /// Index 0 runs next.
    /// </summary>
    public static FairQueueEntry[] Order(IEnumerable<FairQueueEntry> pending, IReadOnlyDictionary<string, long> lastServed, long counter) =>
        Derive(pending, lastServed, counter).Order;

    /// <summary>
    /// <see cref="Order"/>, with what placing a later entry into it needs (<see cref="FairOrderPlacement"/>): how
    /// many entries each class holds and each user's turn in it.
    /// </summary>
    internal static FairOrderPlacement Derive(IEnumerable<FairQueueEntry> pending, IReadOnlyDictionary<string, long> lastServed, long counter)
    {
        var start = counter;
        var served = new Dictionary<string, long>(lastServed, StringComparer.Ordinal);
        var order = new List<FairQueueEntry>();
        var classes = new Dictionary<int, FairOrderPlacement.Class>();
        // Classes one after the other, highest first; the served ticks carry over from one class to the next.
        foreach (var level in pending.GroupBy(e => e.Priority).OrderByDescending(g => g.Key))
        {
            var queues = level.GroupBy(e => e.UserId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => new Queue<FairQueueEntry>(g.OrderBy(e => e.Seq)), StringComparer.Ordinal);
            // The users in turn order: least recently served, then the oldest head.
            var turns = new PriorityQueue<string, (long Served, long HeadSeq)>();
            var users = new Dictionary<string, FairOrderPlacement.Turn>(StringComparer.Ordinal);
            foreach (var (user, queue) in queues)
            {
                var turn = new FairOrderPlacement.Turn(served.GetValueOrDefault(user), queue.Peek().Seq);
                users[user] = turn with { Count = queue.Count };
                turns.Enqueue(user, (turn.Tick, turn.HeadSeq));
            }
            classes[level.Key] = new FairOrderPlacement.Class(order.Count, users);
            while (turns.TryDequeue(out var user, out _))
            {
                var queue = queues[user];
                order.Add(queue.Dequeue());
                served[user] = ++counter;
                if (queue.Count > 0) turns.Enqueue(user, (counter, queue.Peek().Seq));
            }
        }
        return new FairOrderPlacement([.. order], lastServed, start, classes);
    }
}

/// <summary>
/// An entry added to a derived claim order without deriving it again: <see cref="DerivedAhead"/> entries of the derived
/// order run before it; among the added entries, the claim order is <see cref="CompareTo"/>'s.
/// </summary>
public sealed record PlacedEntry(FairQueueEntry Entry, int DerivedAhead, int Round, long TurnTick, long TurnSeq) : IComparable<PlacedEntry>
{
    /// <summary>Higher class first; within a class by round (a user's n-th job of the class runs in its n-th round), then by the users' turn.</summary>
    public int CompareTo(PlacedEntry? other) =>
        other is null ? 1
        : other.Entry.Priority != Entry.Priority ? other.Entry.Priority.CompareTo(Entry.Priority)
        : Round != other.Round ? Round.CompareTo(other.Round)
        : (TurnTick, TurnSeq).CompareTo((other.TurnTick, other.TurnSeq));
}

/// <summary>
/// Places new entries into a derived fair order in O(users of the entry's class), so that a submit does not re-derive
/// the order of everything queued. Within a class the order is rounds: every user with a job left takes one turn per
/// round, in the order of the first round (a served user's tick is newer than every other's, so it goes last), so a
/// user's n-th job there has ahead of it every higher class, each earlier user's first n jobs of the class and each
/// later user's first n − 1. A new entry leaves everything before it where it was; it moves only entries after it, by
/// one, except when it changes when its user is served before a lower class (it has jobs below, or an added entry
/// above): then <see cref="Place"/> declines and the order is derived again. Not thread-safe: the index's lock guards it.
/// </summary>
internal sealed class FairOrderPlacement
{
    /// <summary>A user's turn in a class: served tick at the class's start, oldest submit in it, jobs in it.</summary>
    internal readonly record struct Turn(long Tick, long HeadSeq, int Count = 0)
    {
        public bool Before(Turn other) => (Tick, HeadSeq).CompareTo((other.Tick, other.HeadSeq)) < 0;
    }

    /// <summary>A priority class of the derived order: where it starts and each of its users' turn.</summary>
    internal sealed record Class(int Start, Dictionary<string, Turn> Users);

    private readonly IReadOnlyDictionary<string, long> _served;
    private readonly long _counter;
    private readonly Dictionary<int, Class> _classes;
    private readonly Dictionary<string, int> _lastIndex = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _lowestClass = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _highestAdded = new(StringComparer.Ordinal);
    private readonly Dictionary<(int Priority, string User), Turn> _added = [];
    private long _lastSeq;

    public FairOrderPlacement(FairQueueEntry[] order, IReadOnlyDictionary<string, long> served, long counter, Dictionary<int, Class> classes)
    {
        Order = order;
        _served = new Dictionary<string, long>(served, StringComparer.Ordinal);
        _counter = counter;
        _classes = classes;
        for (var i = 0; i < order.Length; i++)
        {
            var e = order[i];
            _lastIndex[e.UserId] = i;
            _lowestClass[e.UserId] = _lowestClass.TryGetValue(e.UserId, out var low) ? Math.Min(low, e.Priority) : e.Priority;
            _lastSeq = Math.Max(_lastSeq, e.Seq);
        }
    }

    /// <summary>The derived order; index 0 runs next.</summary>
    public FairQueueEntry[] Order { get; }

    /// <summary>Where <paramref name="entry"/> (submitted after every entry placed so far) runs, or null when only a new derivation can tell.</summary>
    public PlacedEntry? Place(FairQueueEntry entry)
    {
        var (user, priority) = (entry.UserId, entry.Priority);
        // A job put back with its old submit sequence (a retry) goes before its user's later ones: not a new last job.
        if (entry.Seq <= _lastSeq) return null;
        if (_lowestClass.TryGetValue(user, out var lowest) && lowest < priority) return null;
        if (_highestAdded.TryGetValue(user, out var highest) && highest > priority) return null;
        var level = _classes.GetValueOrDefault(priority);
        var derived = level?.Users.GetValueOrDefault(user) ?? default;
        var turn = level is not null && level.Users.ContainsKey(user) ? derived
            : _added.TryGetValue((priority, user), out var added) ? added with { Count = 0 }
            // New to the class: its tick there is its last turn in a higher class (every job it has waiting is higher), or its last serve.
            : new Turn(_lastIndex.TryGetValue(user, out var last) ? _counter + 1 + last : _served.GetValueOrDefault(user), entry.Seq);
        var round = derived.Count + (_added.TryGetValue((priority, user), out var mine) ? mine.Count : 0) + 1;
        var ahead = level?.Start ?? _classes.Where(c => c.Key > priority).Sum(c => c.Value.Users.Values.Sum(t => t.Count));
        if (level is not null)
            foreach (var (other, theirs) in level.Users)
                ahead += other == user ? theirs.Count : Math.Min(theirs.Count, theirs.Before(turn) ? round : round - 1);
        _added[(priority, user)] = turn with { Count = round - derived.Count };
        _lastSeq = entry.Seq;
        // The checks above make this entry its user's lowest class and highest added one.
        _lowestClass[user] = priority;
        _highestAdded[user] = priority;
        return new PlacedEntry(entry, ahead, round, turn.Tick, turn.HeadSeq);
    }
}
