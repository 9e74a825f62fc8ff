using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Jobs;

/// <summary>Where a job stands: 1-based place in the claim order (null once it left the queue) and seconds until it should be done.</summary>
public sealed record QueuePlace(int? Position, double? EtaSeconds);

/// <summary>One waiting job in claim order: <see cref="SecondsAhead"/> is the estimated run time of it and everything before it.</summary>
public sealed record WaitingJob(string Id, string UserId, int Priority, int Position, double SecondsAhead, JobParams Params, DateTime CreatedAt);

/// <summary>A running job and the run time it is estimated to need in all.</summary>
public sealed record RunningJob(string Id, string UserId, DateTime? StartedAt, double EstimatedSeconds);

/// <summary>
/// The GPU queue's waiting jobs in claim order with their places and ETAs, from one version of the queue, shared by
/// every reader (status, lists, 202 bodies, event streams, admin and studio pages). Immutable. It mirrors the fair
/// queue's snapshot: the order as derived, joined to the job records once per derivation, plus the jobs added since,
/// each placed by the storage; a place is a dictionary lookup and a binary search among the added jobs.
/// </summary>
public sealed class QueueState
{
    // The derived order, aligned with the snapshot's (null where a queue entry has no record), and per index the
    // places and estimated seconds of the jobs before it.
    private readonly Queued?[] _derived;
    private readonly int[] _placesBefore;
    private readonly double[] _secondsBefore;
    private readonly Dictionary<string, int> _derivedIndex;
    private readonly Dictionary<string, List<string>> _derivedByUser;
    // The jobs added since, in claim order, with how many derived entries run before each (ascending) and the
    // estimated seconds of the first n of them.
    private readonly Queued[] _added;
    private readonly int[] _addedAhead;
    private readonly double[] _addedSeconds;
    private readonly Dictionary<string, int> _addedIndex;
    private IReadOnlyList<WaitingJob>? _waiting;

    /// <summary>A waiting job's facts that never change, and its estimated run time.</summary>
    internal sealed record Queued(string Id, string UserId, int Priority, JobParams Params, DateTime CreatedAt, double Estimate);

    private QueueState((long, long, long) version, long moves, long derivedAt, Queued?[] derived, int[] placesBefore, double[] secondsBefore,
        Dictionary<string, int> derivedIndex, Dictionary<string, List<string>> derivedByUser, Queued[] added, int[] addedAhead,
        IReadOnlyList<RunningJob> running)
    {
        Version = version;
        Moves = moves;
        DerivedAt = derivedAt;
        _derived = derived;
        _placesBefore = placesBefore;
        _secondsBefore = secondsBefore;
        _derivedIndex = derivedIndex;
        _derivedByUser = derivedByUser;
        _added = added;
        _addedAhead = addedAhead;
        _addedSeconds = new double[added.Length + 1];
        for (var i = 0; i < added.Length; i++) _addedSeconds[i + 1] = _addedSeconds[i] + added[i].Estimate;
        _addedIndex = new Dictionary<string, int>(added.Length, StringComparer.Ordinal);
        for (var i = 0; i < added.Length; i++) _addedIndex[added[i].Id] = i;
        Running = running;
    }

    internal static QueueState Empty { get; } = Derived((-1, -1, -1), -1, -1, [], []);

    /// <summary>A state of <paramref name="derived"/> (aligned with the snapshot's derived order) with nothing added.</summary>
    internal static QueueState Derived((long, long, long) version, long moves, long derivedAt, Queued?[] derived, IReadOnlyList<RunningJob> running)
    {
        var placesBefore = new int[derived.Length + 1];
        var secondsBefore = new double[derived.Length + 1];
        var index = new Dictionary<string, int>(derived.Length, StringComparer.Ordinal);
        var byUser = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < derived.Length; i++)
        {
            placesBefore[i + 1] = placesBefore[i];
            secondsBefore[i + 1] = secondsBefore[i];
            if (derived[i] is not { } job) continue;
            placesBefore[i + 1]++;
            secondsBefore[i + 1] += job.Estimate;
            index[job.Id] = i;
            if (!byUser.TryGetValue(job.UserId, out var own)) byUser[job.UserId] = own = [];
            own.Add(job.Id);
        }
        return new QueueState(version, moves, derivedAt, derived, placesBefore, secondsBefore, index, byUser, [], [], running);
    }

    /// <summary>This state's derived order with <paramref name="added"/> (in claim order, each after <paramref name="ahead"/> derived entries) instead of its own.</summary>
    internal QueueState WithAdded((long, long, long) version, Queued[] added, int[] ahead) =>
        new(version, Moves, DerivedAt, _derived, _placesBefore, _secondsBefore, _derivedIndex, _derivedByUser, added, ahead, Running);

    internal (long Queue, long Jobs, long Stats) Version { get; }

    /// <summary>The job store's <see cref="JobStore.QueueMoves"/> when the order was derived.</summary>
    internal long Moves { get; }

    /// <summary>The snapshot's <see cref="FairQueueSnapshot.DerivedAt"/> this state's derived order is of.</summary>
    internal long DerivedAt { get; }

    /// <summary>Every waiting job in claim order; position 1 runs next. Made on first ask (admin and studio pages).</summary>
    public IReadOnlyList<WaitingJob> Waiting => Volatile.Read(ref _waiting) ?? MakeWaiting();

    public IReadOnlyList<RunningJob> Running { get; }

    internal int Count => _placesBefore[^1] + _added.Length;

    /// <summary>The job's place: O(1) for a job of the derived order, O(log added) for the rest.</summary>
    public WaitingJob? Find(string jobId)
    {
        if (_derivedIndex.TryGetValue(jobId, out var i))
        {
            var job = _derived[i]!;
            // The added jobs placed before derived entry i.
            var before = UpperBound(_addedAhead, i);
            return Make(job, _placesBefore[i] + before + 1, _secondsBefore[i + 1] + _addedSeconds[before]);
        }
        if (!_addedIndex.TryGetValue(jobId, out var a)) return null;
        var ahead = _addedAhead[a];
        return Make(_added[a], _placesBefore[ahead] + a + 1, _secondsBefore[ahead] + _addedSeconds[a + 1]);
    }

    /// <summary>One user's waiting jobs in claim order (the studio's "my queue").</summary>
    public IReadOnlyList<WaitingJob> OfUser(string userId)
    {
        var own = (_derivedByUser.GetValueOrDefault(userId) ?? []).Concat(_added.Where(a => a.UserId == userId).Select(a => a.Id));
        return [.. own.Select(id => Find(id)!).OrderBy(w => w.Position)];
    }

    /// <summary>Seconds until the GPU should be free of the running jobs, at <paramref name="now"/>.</summary>
    public double RunningSecondsLeft(DateTime now) => Running.Select(r => Remaining(r, now)).DefaultIfEmpty(0).Max();

    internal static double Remaining(RunningJob job, DateTime now) =>
        Math.Max(0, job.EstimatedSeconds - (job.StartedAt is { } started ? (now - started).TotalSeconds : 0));

    /// <summary>A waiting job's facts, if this state holds the job.</summary>
    internal Queued? Known(string id) =>
        _derivedIndex.TryGetValue(id, out var i) ? _derived[i] : _addedIndex.TryGetValue(id, out var a) ? _added[a] : null;

    private static WaitingJob Make(Queued job, int position, double secondsAhead) =>
        new(job.Id, job.UserId, job.Priority, position, secondsAhead, job.Params, job.CreatedAt);

    // How many of the ascending values are at most value.
    private static int UpperBound(int[] values, int value)
    {
        var (low, high) = (0, values.Length);
        while (low < high)
        {
            var mid = (low + high) >>> 1;
            if (values[mid] <= value) low = mid + 1;
            else high = mid;
        }
        return low;
    }

    private List<WaitingJob> MakeWaiting()
    {
        var waiting = new List<WaitingJob>(Count);
        waiting.AddRange(_derivedIndex.Keys.Concat(_added.Select(a => a.Id)).Select(id => Find(id)!).OrderBy(w => w.Position));
        Volatile.Write(ref _waiting, waiting);
        return waiting;
    }
}

/// <summary>
/// Queue places and ETAs: the running jobs' remaining time plus the estimates of everything claimed before. The claim
/// order is the Hangfire storage's own (the one source of truth: its fair dequeue, which also places each new job);
/// this view joins its derived order to the job records once per derivation and each job added since once, and every
/// reader shares the result: a place costs a dictionary lookup, whatever the backlog, and a submit's 202 costs the
/// join of the jobs added since the last derivation, not of the whole queue.
/// </summary>
public sealed class QueueView(JobStore jobs, IFairQueue storage, RunTimeStats stats, TimeProvider time)
{
    private readonly Lock _gate = new();
    private QueueState _state = QueueState.Empty;

    /// <summary>
    /// A state at least as new as the queue when asked: made now if the queue changed since the last one began.
    /// Callers waiting while one is made take the next one together, so a burst of submits (each 202 body reads this)
    /// costs one per wave, not one per submit; and one made because jobs were added joins only those.
    /// </summary>
    public QueueState Current
    {
        get
        {
            var wanted = (storage.GetFairQueueVersion(JobQueue.GpuQueue), jobs.QueueVersion, stats.Version);
            var state = Volatile.Read(ref _state);
            if (Covers(state.Version, wanted)) return state;
            lock (_gate)
            {
                if (Covers(_state.Version, wanted)) return _state;
                // The job store's counters are read first: a state made from the snapshot and the records read after
                // them sees every change they count. Its version before its moves: a move that the version read
                // counts is then among the moves read too, so the state is derived again (JobStore moves them in the
                // other order).
                var version = (Queue: 0L, Jobs: jobs.QueueVersion, Stats: stats.Version);
                var moves = jobs.QueueMoves;
                var pending = storage.GetFairQueueSnapshot(JobQueue.GpuQueue);
                version.Queue = pending.Version;
                state = _state.DerivedAt == pending.DerivedAt && _state.Moves == moves && _state.Version.Stats == version.Stats
                    ? Patch(_state, version, pending)
                    : Derive(version, moves, pending);
                Volatile.Write(ref _state, state);
                return state;
            }
        }
    }

    // Every part of the version only grows, so a state derived at a later version holds every change of an earlier one.
    private static bool Covers((long Queue, long Jobs, long Stats) have, (long Queue, long Jobs, long Stats) wanted) =>
        have.Queue >= wanted.Queue && have.Jobs >= wanted.Jobs && have.Stats >= wanted.Stats;

    /// <summary>How many times the whole order was joined to the records: the work a deep queue must not multiply (tests count it).</summary>
    public long Derivations { get; private set; }

    /// <summary>How many queue entries were joined to their jobs, in derivations and in placing added jobs: the work per submit (tests count it).</summary>
    public long Joined => Volatile.Read(ref _joined);

    private long _joined;

    public QueuePlace PlaceOf(JobRecord job) => PlaceOf(job, Current);

    public QueuePlace PlaceOf(JobRecord job, QueueState state)
    {
        if (job.IsFinished) return new QueuePlace(null, 0);
        var now = time.GetUtcNow().UtcDateTime;
        if (job.Status == JobStatus.Running)
            return new QueuePlace(null, QueueState.Remaining(new RunningJob(job.Id, job.UserId, job.StartedAt, stats.Estimate(job.Params)), now));
        return state.Find(job.Id) is { } waiting
            ? new QueuePlace(waiting.Position, state.RunningSecondsLeft(now) + waiting.SecondsAhead)
            : new QueuePlace(null, null);
    }

    /// <summary>Seconds until the GPU should next be free: what a refused client is told to wait (Retry-After).</summary>
    public double SecondsUntilNextSlot() => Current.RunningSecondsLeft(time.GetUtcNow().UtcDateTime);

    private QueueState Derive((long, long, long) version, long moves, FairQueueSnapshot pending)
    {
        Derivations++;
        var join = new Joiner(this, jobs, stats, _state, sameStats: _state.Version.Stats == version.Item3);
        var running = jobs.WithStatus(JobStatus.Running).Select(j => new RunningJob(j.Id, j.UserId, j.StartedAt, stats.Estimate(j.Params))).ToList();
        var derived = new QueueState.Queued?[pending.Derived.Count];
        for (var i = 0; i < derived.Length; i++) derived[i] = join.Join(pending.Derived[i]);
        return Patch(QueueState.Derived(version, moves, pending.DerivedAt, derived, running), version, pending, join);
    }

    private QueueState Patch(QueueState state, (long, long, long) version, FairQueueSnapshot pending, Joiner? join = null)
    {
        join ??= new Joiner(this, jobs, stats, state, sameStats: true);
        var added = new List<QueueState.Queued>(pending.Added.Count);
        var ahead = new List<int>(pending.Added.Count);
        foreach (var placed in pending.Added)
        {
            // An entry without a record (its job's record was never stored) holds no place.
            if (join.Join(placed.Entry) is not { } job) continue;
            added.Add(job);
            ahead.Add(placed.DerivedAhead);
        }
        return state.WithAdded(version, [.. added], [.. ahead]);
    }

    /// <summary>Queue entries to the jobs' facts: from the previous state where it had them (they never change), else from the records.</summary>
    private sealed class Joiner(QueueView view, JobStore jobs, RunTimeStats stats, QueueState previous, bool sameStats)
    {
        private readonly Dictionary<string, double> _estimates = new(StringComparer.Ordinal);

        public QueueState.Queued? Join(FairQueueEntry entry)
        {
            Interlocked.Increment(ref view._joined);
            var id = entry.Ref ?? jobs.FindByHangfireJob(entry.JobId)?.Id;
            if (id is null) return null;
            if (previous.Known(id) is { } seen)
            {
                if (sameStats && seen.UserId == entry.UserId && seen.Priority == entry.Priority) return seen;
                return seen with { UserId = entry.UserId, Priority = entry.Priority, Estimate = sameStats ? seen.Estimate : Estimate(seen.Params) };
            }
            if (jobs.FindQueued(id) is not { } record) return null;
            return new QueueState.Queued(id, entry.UserId, entry.Priority, record.Params, record.CreatedAt, Estimate(record.Params));
        }

        private double Estimate(JobParams parameters)
        {
            var key = RunTimeStats.KeyOf(parameters);
            if (!_estimates.TryGetValue(key, out var estimate)) _estimates[key] = estimate = stats.Estimate(parameters);
            return estimate;
        }
    }
}
