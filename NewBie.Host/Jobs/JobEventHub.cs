namespace NewBie.Host.Jobs;

/// <summary>
/// Fans job changes out to the open event streams. The store hands every change over with the record as saved; the
/// hub queues it for each of that job's subscribers (a bounded queue: every stream sees every step unless it falls
/// <see cref="Subscription.MaxPending"/> changes behind, and is then told how many it missed), and on a change that can move queue places it wakes every subscriber
/// whose job waits, which then reads its place from the one shared <see cref="QueueView"/> state. No subscriber reads
/// the store, and the queue's order is derived once per change whatever the number of streams. Subscriptions are
/// counted per user, so that one user's streams cannot take the server's (Limits:MaxEventStreamsPerUser).
/// </summary>
public sealed class JobEventHub
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Subscription>> _byJob = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _perUser = new(StringComparer.Ordinal);
    private Subscription[] _all = [];

    public JobEventHub(JobStore jobs, HangfireStorage.IFairQueue storage)
    {
        jobs.Changed += OnChanged;
        storage.FairQueueChanged += _ => WakeWaiting();
    }

    /// <summary>Open streams of <paramref name="userId"/>.</summary>
    public int StreamsOf(string userId)
    {
        lock (_gate) return _perUser.GetValueOrDefault(userId);
    }

    /// <summary>
    /// A subscription to <paramref name="job"/>'s changes, or null when the user already has <paramref name="maxPerUser"/>
    /// open. <paramref name="reread"/> reads the job again as the subscription starts (its <see cref="Subscription.Initial"/>):
    /// read under the hub's lock, under which changes are queued too, so that every later change comes after it in the
    /// subscription's queue (at worst the same record once more) and none saved meanwhile is missed.
    /// </summary>
    public Subscription? Subscribe(JobRecord job, string userId, int maxPerUser, Func<string, JobRecord?>? reread = null)
    {
        lock (_gate)
        {
            var open = _perUser.GetValueOrDefault(userId);
            if (open >= maxPerUser) return null;
            _perUser[userId] = open + 1;
            var subscription = new Subscription(this, reread?.Invoke(job.Id) ?? job, userId);
            if (!_byJob.TryGetValue(job.Id, out var list)) _byJob[job.Id] = list = [];
            list.Add(subscription);
            _all = [.. _all, subscription];
            return subscription;
        }
    }

    private void Unsubscribe(Subscription subscription)
    {
        lock (_gate)
        {
            if (_byJob.TryGetValue(subscription.JobId, out var list) && list.Remove(subscription) && list.Count == 0) _byJob.Remove(subscription.JobId);
            if (_perUser.TryGetValue(subscription.UserId, out var open)) _perUser[subscription.UserId] = open - 1;
            if (_perUser.GetValueOrDefault(subscription.UserId) <= 0) _perUser.Remove(subscription.UserId);
            _all = _all.Where(s => s != subscription).ToArray();
        }
    }

    /// <summary>The jobs some stream on this node follows: what a change made on another node must be read for.</summary>
    public IReadOnlyCollection<string> WatchedJobs
    {
        get
        {
            lock (_gate) return [.. _byJob.Keys];
        }
    }

    public bool IsWatched(string jobId)
    {
        lock (_gate) return _byJob.ContainsKey(jobId);
    }

    /// <summary>A change saved by another node (Nodes/ClusterJobEvents), delivered to this node's streams like a local one.</summary>
    public void Deliver(JobRecord job, bool queueChanged) => OnChanged(job, queueChanged);

    private void OnChanged(JobRecord job, bool queueChanged)
    {
        lock (_gate)
            if (_byJob.TryGetValue(job.Id, out var list))
                foreach (var subscription in list) subscription.Push(job);
        if (queueChanged) WakeWaiting();
    }

    /// <summary>Wakes every stream whose job waits, to read its place again.</summary>
    public void WakeWaiting()
    {
        foreach (var subscription in Volatile.Read(ref _all))
            if (subscription.Latest.Status == JobStatus.Queued) subscription.Wake();
    }

    /// <summary>
    /// One open stream's view of its job: the records saved since it last looked, oldest first, and a signal that
    /// completes at the next change of the job or of its place.
    /// </summary>
    public sealed class Subscription : IDisposable
    {
        /// <summary>
        /// Changes a stream may fall behind before the oldest are dropped: a few full runs' steps, so only a client that
        /// stopped reading loses any, and then it is told (the writer's own buffer is not unbounded memory per stream).
        /// </summary>
        public const int MaxPending = 512;

        private readonly JobEventHub _hub;
        private readonly Queue<JobRecord> _pending = new();
        private JobRecord _latest;
        private int _dropped;
        private TaskCompletionSource _next = NewSignal();
        private int _disposed;

        internal Subscription(JobEventHub hub, JobRecord job, string userId)
        {
            _hub = hub;
            _latest = job;
            Initial = job;
            JobId = job.Id;
            UserId = userId;
        }

        public string JobId { get; }

        public string UserId { get; }

        /// <summary>The record as it was when the subscription started: where the stream begins.</summary>
        public JobRecord Initial { get; }

        /// <summary>The record as last saved; never changed after it was saved.</summary>
        public JobRecord Latest => Volatile.Read(ref _latest);

        /// <summary>Completes at the next change of the job or of its place. Take it before <see cref="TakePending"/>.</summary>
        public Task Next => Volatile.Read(ref _next).Task;

        /// <summary>The records saved since the last call, oldest first, and how many older ones were dropped meanwhile.</summary>
        public (JobRecord[] Records, int Dropped) TakePending()
        {
            lock (_pending)
            {
                var records = _pending.ToArray();
                _pending.Clear();
                var dropped = _dropped;
                _dropped = 0;
                return (records, dropped);
            }
        }

        internal void Push(JobRecord job)
        {
            lock (_pending)
            {
                if (_pending.Count == MaxPending)
                {
                    _pending.Dequeue();
                    _dropped++;
                }
                _pending.Enqueue(job);
                Volatile.Write(ref _latest, job);
            }
            Wake();
        }

        internal void Wake() => Interlocked.Exchange(ref _next, NewSignal()).TrySetResult();

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0) _hub.Unsubscribe(this);
        }

        private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
