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

    public GpuMemoryInfo? Query(string device)
    {
        AskedFor = device;
        return new GpuMemoryInfo(totalBytes - FreeBytes, FreeBytes, totalBytes);
    }

    public IReadOnlyList<GpuDevice> Devices() => [new GpuDevice(0, name, totalBytes)];
}
