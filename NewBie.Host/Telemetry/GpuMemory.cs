using System.Globalization;
using System.Runtime.InteropServices;

namespace NewBie.Host.Telemetry;

public readonly record struct GpuMemoryInfo(long UsedBytes, long FreeBytes, long TotalBytes);

/// <summary>One GPU as the driver names it.</summary>
public sealed record GpuDevice(int Index, string Name, long TotalBytes);

/// <summary>
/// The GPUs and their memory as the driver sees them: the one seam between the server and the hardware's memory
/// figures, so tests can simulate any card. Empty and null without an NVIDIA driver (CPU mode, not an error).
/// </summary>
public interface IGpuMemory
{
    /// <summary>Memory of the GPU a device string ("cuda", "cuda:1") names; null on CPU or when the driver cannot say.</summary>
    GpuMemoryInfo? Query(string device);

    /// <summary>Every GPU the driver reports; empty when there is no driver library.</summary>
    IReadOnlyList<GpuDevice> Devices();

    /// <summary>The index a device string names: "cuda" is 0, "cuda:1" is 1; null for a non-CUDA device.</summary>
    static uint? IndexOf(string device)
    {
        if (!device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) return null;
        return device.IndexOf(':') is var colon and >= 0 && uint.TryParse(device.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0u;
    }
}

/// <summary>
/// Asks the NVIDIA driver (NVML) rather than the CUDA runtime: NVML sees the whole device, other processes included,
/// which is what an operator watching for out-of-memory needs, and it needs no CUDA context of its own.
/// </summary>
public sealed class NvmlGpuMemory : IGpuMemory, IDisposable
{
    private const int Success = 0;

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int InitFn();
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int HandleByIndexFn(uint index, out IntPtr device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int MemoryInfoFn(IntPtr device, out NvmlMemory memory);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int CountFn(out uint count);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int NameFn(IntPtr device, byte[] name, uint length);

    // NVML_DEVICE_NAME_V2_BUFFER_SIZE: the largest name the driver writes, terminator included.
    private const int NameBufferSize = 96;

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total, Free, Used;
    }

    private readonly Lock _gate = new();
    private bool _loaded;
    private IntPtr _library;
    private HandleByIndexFn? _handleByIndex;
    private MemoryInfoFn? _memoryInfo;
    private CountFn? _count;
    private NameFn? _name;
    private InitFn? _shutdown;

    public GpuMemoryInfo? Query(string device)
    {
        if (IGpuMemory.IndexOf(device) is not { } index) return null;
        lock (_gate)
        {
            if (!_loaded) Load();
            if (_handleByIndex is null || _memoryInfo is null) return null;
            if (_handleByIndex(index, out var handle) != Success || _memoryInfo(handle, out var memory) != Success) return null;
            return new GpuMemoryInfo((long)memory.Used, (long)memory.Free, (long)memory.Total);
        }
    }

    public IReadOnlyList<GpuDevice> Devices()
    {
        lock (_gate)
        {
            if (!_loaded) Load();
            if (_count is null || _handleByIndex is null || _count(out var count) != Success) return [];
            var devices = new List<GpuDevice>();
            for (var i = 0u; i < count; i++)
            {
                if (_handleByIndex(i, out var handle) != Success) continue;
                var buffer = new byte[NameBufferSize];
                var name = _name is not null && _name(handle, buffer, NameBufferSize) == Success
                    ? CString(buffer) : "NVIDIA GPU";
                var total = _memoryInfo is not null && _memoryInfo(handle, out var memory) == Success ? (long)memory.Total : 0;
                devices.Add(new GpuDevice((int)i, name, total));
            }
            return devices;
        }
    }

    private void Load()
    {
        _loaded = true;
        string[] names = OperatingSystem.IsWindows() ? ["nvml.dll"] : ["libnvidia-ml.so.1", "libnvidia-ml.so"];
        foreach (var name in names)
        {
            if (!NativeLibrary.TryLoad(name, out _library)) continue;
            if (Export<InitFn>("nvmlInit_v2") is not { } init || init() != Success) break;
            _shutdown = Export<InitFn>("nvmlShutdown");
            _handleByIndex = Export<HandleByIndexFn>("nvmlDeviceGetHandleByIndex_v2");
            _memoryInfo = Export<MemoryInfoFn>("nvmlDeviceGetMemoryInfo");
            _count = Export<CountFn>("nvmlDeviceGetCount_v2");
            _name = Export<NameFn>("nvmlDeviceGetName");
            return;
        }
    }

    private static string CString(byte[] buffer) =>
        System.Text.Encoding.UTF8.GetString(buffer, 0, Array.IndexOf(buffer, (byte)0) is var end and >= 0 ? end : buffer.Length);

    private T? Export<T>(string name) where T : Delegate =>
        NativeLibrary.TryGetExport(_library, name, out var address) ? Marshal.GetDelegateForFunctionPointer<T>(address) : null;

    public void Dispose()
    {
        lock (_gate)
        {
            _shutdown?.Invoke();
            _handleByIndex = null;
            _memoryInfo = null;
            _count = null;
            _name = null;
            _shutdown = null;
            if (_library != IntPtr.Zero) NativeLibrary.Free(_library);
            _library = IntPtr.Zero;
        }
    }
}
