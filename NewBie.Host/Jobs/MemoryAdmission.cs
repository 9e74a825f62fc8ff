using NewBie.Host.Telemetry;
using NewBie.Pipeline;

namespace NewBie.Host.Jobs;

public enum AdmissionVerdict { Start, Wait, Never }

/// <summary>
/// Whether the GPU has room for a job now (design.md §5), from the engine's estimate and the driver's free memory.
/// libtorch's caching allocator keeps what earlier runs freed reserved for reuse, and the driver counts it as used, so
/// the largest run admitted so far counts as available too: without that the second job would wait on our own cache.
/// </summary>
public sealed class MemoryAdmission(IGpuMemory gpu)
{
    private const double GiB = 1L << 30;
    private long _reusableBytes;

    public (AdmissionVerdict Verdict, string Message) Check(string device, MemoryNeed need)
    {
        // A CPU engine estimates nothing, and without the driver's figures there is nothing to compare with.
        if (need == default || gpu.Query(device) is not { } memory) return (AdmissionVerdict.Start, "");
        if (need.PeakBytes > memory.TotalBytes)
            return (AdmissionVerdict.Never,
                $"The job needs an estimated {need.PeakBytes / GiB:F1} GiB of GPU memory with the model loaded, more than the {memory.TotalBytes / GiB:F1} GiB of {device}; use a smaller size or a lighter memory plan.");
        var available = memory.FreeBytes + Interlocked.Read(ref _reusableBytes);
        return need.RunBytes <= available
            ? (AdmissionVerdict.Start, "")
            : (AdmissionVerdict.Wait, $"Waiting for GPU memory: the job needs an estimated {need.RunBytes / GiB:F1} GiB, {available / GiB:F1} GiB is free.");
    }

    /// <summary>Records an admitted run: from now on the allocator may hold its memory for the next one.</summary>
    public void Started(MemoryNeed need)
    {
        long seen;
        while ((seen = Interlocked.Read(ref _reusableBytes)) < need.RunBytes && Interlocked.CompareExchange(ref _reusableBytes, need.RunBytes, seen) != seen) { }
    }
}
