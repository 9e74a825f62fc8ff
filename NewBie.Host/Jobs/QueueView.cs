using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Jobs;

/// <summary>Where a job stands: 1-based place in the claim order (null once it left the queue) and seconds until it should be done.</summary>
public sealed record QueuePlace(int? Position, double? EtaSeconds);

/// <summary>One waiting job in claim order: <see cref="SecondsAhead"/> is the estimated run time of it and everything before it.</summary>
public sealed record WaitingJob(string Id, string UserId, int Priority, int Position, double SecondsAhead, JobParams Params, DateTime CreatedAt);

/// <summary>A running job and the run time it is estimated to need in all.</summary>
public sealed record RunningJob(string Id, string UserId, DateTime? StartedAt, double EstimatedSeconds);

/// <summary>
/// The GPU queue's waiting jobs in claim order with their places and ETAs, derived once from one version of the queue
/// and shared by every reader (status, lists, 202 bodies, event streams, admin and studio pages). Immutable.
/// </summary>
public sealed class QueueState
{
    private readonly Dictionary<string, WaitingJob> _byId;
    private readonly Dictionary<string, List<WaitingJob>> _byUser;

    internal QueueState((long, long, long) version, IReadOnlyList<WaitingJob> waiting, IReadOnlyList<RunningJob> running)
    {
        Version = version;
        Waiting = waiting;
        Running = running;
        _byId = waiting.ToDictionary(w => w.Id, StringComparer.Ordinal);
        _byUser = waiting.GroupBy(w => w.UserId, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
    }

    internal (long Queue, long Jobs, long Stats) Version { get; }

    /// <summary>Position 1 runs next.</summary>
    public IReadOnlyList<WaitingJob> Waiting { get; }

    public IReadOnlyList<RunningJob> Running { get; }

    public WaitingJob? Find(string jobId) => _byId.GetValueOrDefault(jobId);

    /// <summary>One user's waiting jobs in claim order (the studio's "my queue").</summary>
    public IReadOnlyList<WaitingJob> OfUser(string userId) => _byUser.GetValueOrDefault(userId) ?? [];

    /// <summary>Seconds until the GPU should be free of the running jobs, at <paramref name="now"/>.</summary>
    public double RunningSecondsLeft(DateTime now) => Running.Select(r => Remaining(r, now)).DefaultIfEmpty(0).Max();

    internal static double Remaining(RunningJob job, DateTime now) =>
        Math.Max(0, job.EstimatedSeconds - (job.StartedAt is { } started ? (now - started).TotalSeconds : 0));
}

/// <summary>
/// Queue places and ETAs: the running jobs' remaining time plus the estimates of everything claimed before. The claim
/// order is the Hangfire storage's own (the one source of truth: its fair dequeue); this view joins it to the job
/// records once per change of the queue, the jobs' statuses or the run-time statistics, and every reader shares the
/// result: a place costs a dictionary lookup, whatever the backlog.
/// </summary>
public sealed class QueueView(JobStore jobs, IFairQueue storage, RunTimeStats stats, TimeProvider time)
{
    private readonly Lock _gate = new();
    private QueueState _state = new((-1, -1, -1), [], []);

    /// <summary>
    /// A state at least as new as the queue when asked: derived now if the queue changed since the last derivation
    /// began. Callers waiting while one derivation runs take the next one together, so a burst of submits (each 202
    /// body reads this) costs one derivation per wave, not one per submit.
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
                var version = VersionNow(out var pending);
                state = Derive(version, pending);
                Volatile.Write(ref _state, state);
                return state;
            }
        }
    }

    private (long, long, long) VersionNow(out FairQueueSnapshot pending)
    {
        // The job store's version is read first: a derivation that reads the snapshot and the records after it sees
        // every change the version counts.
        var jobsVersion = jobs.QueueVersion;
        var statsVersion = stats.Version;
        pending = storage.GetFairQueueSnapshot(JobQueue.GpuQueue);
        return (pending.Version, jobsVersion, statsVersion);
    }

    // Every part of the version only grows, so a state derived at a later version holds every change of an earlier one.
    private static bool Covers((long Queue, long Jobs, long Stats) have, (long Queue, long Jobs, long Stats) wanted) =>
        have.Queue >= wanted.Queue && have.Jobs >= wanted.Jobs && have.Stats >= wanted.Stats;

    /// <summary>How many times the state was derived: the work a deep queue must not multiply (tests count it).</summary>
    public long Derivations { get; private set; }

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

    private QueueState Derive((long, long, long) version, FairQueueSnapshot pending)
    {
        Derivations++;
        var known = Volatile.Read(ref _state).Waiting.ToDictionary(w => w.Id, StringComparer.Ordinal);
        var running = jobs.WithStatus(JobStatus.Running).Select(j => new RunningJob(j.Id, j.UserId, j.StartedAt, stats.Estimate(j.Params))).ToList();
        var estimates = new Dictionary<string, double>(StringComparer.Ordinal);
        var waiting = new List<WaitingJob>(pending.Pending.Count);
        var ahead = 0.0;
        foreach (var entry in pending.Pending)
        {
            // Parameters and submit time never change, so they are read once per job, not once per change.
            var id = entry.Ref ?? jobs.FindByHangfireJob(entry.JobId)?.Id;
            if (id is null) continue;
            var (parameters, created) = known.TryGetValue(id, out var seen) ? (seen.Params, seen.CreatedAt)
                : jobs.Find(id) is { } record ? (record.Params, record.CreatedAt)
                : (null, default);
            if (parameters is null) continue;
            var key = RunTimeStats.KeyOf(parameters);
            if (!estimates.TryGetValue(key, out var estimate)) estimates[key] = estimate = stats.Estimate(parameters);
            ahead += estimate;
            waiting.Add(new WaitingJob(id, entry.UserId, entry.Priority, waiting.Count + 1, ahead, parameters, created));
        }
        return new QueueState(version, waiting, running);
    }
}
