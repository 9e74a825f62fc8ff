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
    public static FairQueueEntry[] Order(IEnumerable<FairQueueEntry> pending, IReadOnlyDictionary<string, long> lastServed, long counter)
    {
        var served = new Dictionary<string, long>(lastServed, StringComparer.Ordinal);
        var order = new List<FairQueueEntry>();
        // Classes one after the other, highest first; the served ticks carry over from one class to the next.
        foreach (var level in pending.GroupBy(e => e.Priority).OrderByDescending(g => g.Key))
        {
            var queues = level.GroupBy(e => e.UserId, StringComparer.Ordinal)
                .ToDictionary(g => g.Key, g => new Queue<FairQueueEntry>(g.OrderBy(e => e.Seq)), StringComparer.Ordinal);
            // The users in turn order: least recently served, then the oldest head.
            var turns = new PriorityQueue<string, (long Served, long HeadSeq)>();
            foreach (var (user, queue) in queues) turns.Enqueue(user, (served.GetValueOrDefault(user), queue.Peek().Seq));
            while (turns.TryDequeue(out var user, out _))
            {
                var queue = queues[user];
                order.Add(queue.Dequeue());
                served[user] = ++counter;
                if (queue.Count > 0) turns.Enqueue(user, (counter, queue.Peek().Seq));
            }
        }
        return [.. order];
    }
}
