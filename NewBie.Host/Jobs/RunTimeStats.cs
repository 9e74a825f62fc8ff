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
/// so estimates survive restarts. A kind never measured is scaled from the others by megapixel-steps.
/// </summary>
public sealed class RunTimeStats(AppDatabase database, IOptions<JobsOptions> options)
{
    /// <summary>Weight of the newest run: recent runs dominate (drivers, memory plan) without one outlier ruling.</summary>
    public const double Alpha = 0.3;

    private readonly ILiteCollection<RunTimeStat> _stats = database.Collection<RunTimeStat>("run_times");
    private readonly Lock _gate = new();

    public static string KeyOf(JobParams p) => $"{p.Width}x{p.Height}/{p.Steps}/{p.Count}";

    public void Record(JobParams p, TimeSpan elapsed)
    {
        lock (_gate)
        {
            var stat = _stats.FindById(KeyOf(p)) ?? new RunTimeStat { Key = KeyOf(p), Width = p.Width, Height = p.Height, Steps = p.Steps, Count = p.Count };
            stat.Seconds = stat.Samples == 0 ? elapsed.TotalSeconds : Alpha * elapsed.TotalSeconds + (1 - Alpha) * stat.Seconds;
            stat.Samples++;
            _stats.Upsert(stat);
        }
    }

    public double Estimate(JobParams p)
    {
        if (_stats.FindById(KeyOf(p)) is { } exact) return exact.Seconds;
        var work = (double)p.Width * p.Height / 1e6 * p.Steps * p.Count;
        var measured = _stats.FindAll().Where(s => s.Work > 0).ToList();
        var perWork = measured.Count > 0 ? measured.Average(s => s.Seconds / s.Work) : options.Value.DefaultSecondsPerMegapixelStep;
        return perWork * work;
    }
}
