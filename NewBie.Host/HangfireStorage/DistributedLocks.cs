using System.Diagnostics;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// Hangfire's distributed locks, in process (one process owns the database): re-entrant for the same owner (a
/// connection), exclusive between owners, <see cref="DistributedLockTimeoutException"/> after the timeout.
/// </summary>
internal sealed class DistributedLocks
{
    private readonly Dictionary<string, Holder> _held = new(StringComparer.Ordinal);

    public IDisposable Acquire(string resource, object owner, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(resource);
        var clock = Stopwatch.StartNew();
        lock (_held)
        {
            while (true)
            {
                if (!_held.TryGetValue(resource, out var holder))
                {
                    _held[resource] = new Holder(owner);
                    break;
                }
                if (ReferenceEquals(holder.Owner, owner))
                {
                    holder.Count++;
                    break;
                }
                if (timeout == Timeout.InfiniteTimeSpan)
                {
                    Monitor.Wait(_held);
                    continue;
                }
                var left = timeout - clock.Elapsed;
                if (left <= TimeSpan.Zero) throw new DistributedLockTimeoutException(resource);
                Monitor.Wait(_held, left);
            }
        }
        return new Lease(this, resource);
    }

    private void Release(string resource)
    {
        lock (_held)
        {
            if (!_held.TryGetValue(resource, out var holder)) return;
            if (--holder.Count > 0) return;
            _held.Remove(resource);
            Monitor.PulseAll(_held);
        }
    }

    private sealed class Holder(object owner)
    {
        public object Owner { get; } = owner;
        public int Count { get; set; } = 1;
    }

    private sealed class Lease(DistributedLocks locks, string resource) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) locks.Release(resource);
        }
    }
}

/// <summary>
/// Wakes the idle fetchers of a queue when a commit put work in it. One signal per queue: a burst of GPU submits must
/// not wake the default queue's workers (each wake-up is a claim attempt), nor they the GPU worker.
/// </summary>
internal sealed class QueueSignal
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Source> _byQueue = new(StringComparer.Ordinal);

    /// <summary>A task that completes at the next <see cref="Raise"/> of one of <paramref name="queues"/>. Take it before looking at them.</summary>
    public Task Next(string[] queues) => queues.Length == 1 ? Of(queues[0]).Next : Task.WhenAny(queues.Select(q => Of(q).Next));

    public void Raise(string queue) => Of(queue).Raise();

    /// <summary>Wakes every fetcher (the storage closes).</summary>
    public void RaiseAll()
    {
        foreach (var source in _byQueue.Values) source.Raise();
    }

    private Source Of(string queue) => _byQueue.GetOrAdd(queue, static _ => new Source());

    private sealed class Source
    {
        private TaskCompletionSource _next = NewSource();

        public Task Next => Volatile.Read(ref _next).Task;

        public void Raise() => Interlocked.Exchange(ref _next, NewSource()).TrySetResult();

        private static TaskCompletionSource NewSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
