namespace NewBie.JobStorage;

/// <summary>One unclaimed job in a fair queue. Priority: higher runs first (2 = high, 1 = normal, 0 = low).</summary>
public sealed record FairQueueEntry(string JobId, string UserId, int Priority, long Seq);

/// <summary>
/// The fair-share policy (design.md §2), pure so that the storage's dequeue, queue positions and ETAs all use it:
/// highest priority class first; within it the least recently served user (a user never served counts as 0, ties
/// broken by who submitted first); within that user FIFO by submit sequence.
/// </summary>
public static class FairOrder
{
    /// <summary>The entry to claim next, or null when nothing is pending.</summary>
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
    /// The predicted claim order of everything pending: PickNext applied repeatedly to a snapshot, advancing the
    /// served counter as the storage does after each claim. Index 0 runs next.
    /// </summary>
    public static IReadOnlyList<FairQueueEntry> Order(IEnumerable<FairQueueEntry> pending, IReadOnlyDictionary<string, long> lastServed, long counter)
    {
        var left = pending.ToList();
        var served = new Dictionary<string, long>(lastServed, StringComparer.Ordinal);
        var order = new List<FairQueueEntry>(left.Count);
        while (PickNext(left, served) is { } next)
        {
            order.Add(next);
            left.Remove(next);
            served[next.UserId] = ++counter;
        }
        return order;
    }
}
