using LiteDB;
using Microsoft.Extensions.Options;
using NewBie.Host.Storage;

namespace NewBie.Host.Jobs;

/// <summary>One kind of job (size, steps, count) and the moving average of its measured GPU seconds.</summary>
public sealed class RunTimeStat
{
    [BsonId] public string Key { get; set; } = "";
    public int Width { get; set; }
    public int Height { get; set; }
    public int Steps { get; set; }
    public int Count { get; set; }
    public double Seconds { get; set; }
    public int Samples { get; set; }

    [BsonIgnore] public double Work => (double)Width * Height / 1e6 * Steps * Count;
}

/// <summary>
/// Run-time estimates for ETAs: an exponentially weighted moving average per kind of job, kept in the app database
/// so estimates survive restarts, and in memory so that an ETA costs no read. A kind never measured is scaled from the
/// others by megapixel-steps.
/// </summary>
public sealed class RunTimeStats
{
    /// <summary>Weight of the newest run: recent runs dominate (drivers, memory plan) without one outlier ruling.</summary>
    public const double Alpha = 0.3;

    private readonly ILiteCollection<RunTimeStat> _stats;
    private readonly IOptions<JobsOptions> _options;
    private readonly Lock _gate = new();
    private Dictionary<string, RunTimeStat> _known;
    private long _version;

    public RunTimeStats(AppDatabase database, IOptions<JobsOptions> options)
    {
        _stats = database.Collection<RunTimeStat>("run_times");
        _options = options;
        _known = _stats.FindAll().ToDictionary(s => s.Key, StringComparer.Ordinal);
    }

    /// <summary>Moves with every recorded run: estimates derived from an earlier version may be stale.</summary>
    public long Version => Interlocked.Read(ref _version);

    public static string KeyOf(JobParams p) => $"{p.Width}x{p.Height}/{p.Steps}/{p.Count}";

    public void Record(JobParams p, TimeSpan elapsed)
    {
        lock (_gate)
        {
            var old = _known.GetValueOrDefault(KeyOf(p));
            var stat = new RunTimeStat { Key = KeyOf(p), Width = p.Width, Height = p.Height, Steps = p.Steps, Count = p.Count };
            stat.Seconds = old is null ? elapsed.TotalSeconds : Alpha * elapsed.TotalSeconds + (1 - Alpha) * old.Seconds;
            stat.Samples = (old?.Samples ?? 0) + 1;
            _stats.Upsert(stat);
            // Replaced, not changed in place: readers enumerate the dictionary they took without the lock.
            _known = new Dictionary<string, RunTimeStat>(_known, StringComparer.Ordinal) { [stat.Key] = stat };
            Interlocked.Increment(ref _version);
        }
    }

    public double Estimate(JobParams p)
    {
        var known = Volatile.Read(ref _known);
        if (known.TryGetValue(KeyOf(p), out var exact)) return exact.Seconds;
        var work = (double)p.Width * p.Height / 1e6 * p.Steps * p.Count;
        var measured = known.Values.Where(s => s.Work > 0).ToList();
        var perWork = measured.Count > 0 ? measured.Average(s => s.Seconds / s.Work) : _options.Value.DefaultSecondsPerMegapixelStep;
        return perWork * work;
    }
}
