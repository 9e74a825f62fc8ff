using NewBie.Host.Telemetry;

namespace NewBie.Host.Tests.Telemetry;

/// <summary>A simulated GPU for any device string: fixed total memory, free memory the test changes while the server runs.</summary>
public sealed class FakeGpuMemory(long totalBytes, long freeBytes, string name = "Fake GPU 80GB") : IGpuMemory
{
    private long _free = freeBytes;

    public long FreeBytes
    {
        get => Interlocked.Read(ref _free);
        set => Interlocked.Exchange(ref _free, value);
    }

    public string? AskedFor { get; private set; }

    private TaskCompletionSource _queried = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next <see cref="Query"/>: a memory wait looking again.</summary>
    public Task NextQuery => Volatile.Read(ref _queried).Task;

    public GpuMemoryInfo? Query(string device)
    {
        AskedFor = device;
        Interlocked.Exchange(ref _queried, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return new GpuMemoryInfo(totalBytes - FreeBytes, FreeBytes, totalBytes);
    }

    public IReadOnlyList<GpuDevice> Devices() => [new GpuDevice(0, name, totalBytes)];
}
