using Microsoft.Extensions.Options;

namespace NewBie.Host.Api;

/// <summary>
/// Gives memory back after a burst. The GC collects only when the process allocates, so a server that goes idle after
/// a burst of large requests keeps the memory it grew into (measured by the LoadBench "memory" run: RSS 340 → 429 MiB
/// after 600 oversized and large requests and still 429 MiB 30 s later, with server GC and with workstation GC alike).
/// Every <see cref="ServerOptions.IdleMemoryTrimSeconds"/>: when at least <see cref="BurstBytes"/> were allocated since
/// the last trim and almost nothing in the last period (the burst is over), one aggressive full collection, which
/// also decommits the freed memory. Never during steady load, never twice for one burst.
/// </summary>
public sealed class IdleMemoryTrim(IOptions<ServerOptions> options, TimeProvider time, ILogger<IdleMemoryTrim> logger) : BackgroundService
{
    public const long BurstBytes = 32L * 1024 * 1024, IdleBytes = 4L * 1024 * 1024;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var seconds = options.Value.IdleMemoryTrimSeconds;
        if (seconds <= 0) return;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), time);
        var atTrim = GC.GetTotalAllocatedBytes();
        var atTick = atTrim;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = GC.GetTotalAllocatedBytes();
                if (ShouldTrim(now - atTrim, now - atTick))
                {
                    var before = Environment.WorkingSet;
                    GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                    logger.LogDebug("Idle after {Allocated} bytes allocated: working set {Before} → {After} bytes", now - atTrim, before, Environment.WorkingSet);
                    atTrim = GC.GetTotalAllocatedBytes();
                }
                atTick = GC.GetTotalAllocatedBytes();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>A burst since the last trim, and quiet in the last period.</summary>
    public static bool ShouldTrim(long sinceTrim, long sinceTick) => sinceTrim >= BurstBytes && sinceTick < IdleBytes;
}
