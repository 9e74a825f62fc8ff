using System.Globalization;
using System.Runtime.InteropServices;

namespace NewBie.Host.Telemetry;

public readonly record struct GpuMemoryInfo(long UsedBytes, long FreeBytes);

/// <summary>Memory of the GPU a device string ("cuda", "cuda:1") names; null on CPU or when the driver cannot say.</summary>
public interface IGpuMemory
{
    GpuMemoryInfo? Query(string device);
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
    private InitFn? _shutdown;

    public GpuMemoryInfo? Query(string device)
    {
        if (!device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) return null;
        var index = device.IndexOf(':') is var colon and >= 0 && uint.TryParse(device.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : 0u;
        lock (_gate)
        {
            if (!_loaded) Load();
            if (_handleByIndex is null || _memoryInfo is null) return null;
            if (_handleByIndex(index, out var handle) != Success || _memoryInfo(handle, out var memory) != Success) return null;
            return new GpuMemoryInfo((long)memory.Used, (long)memory.Free);
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
            return;
        }
    }

    private T? Export<T>(string name) where T : Delegate =>
        NativeLibrary.TryGetExport(_library, name, out var address) ? Marshal.GetDelegateForFunctionPointer<T>(address) : null;

    public void Dispose()
    {
        lock (_gate)
        {
            _shutdown?.Invoke();
            _handleByIndex = null;
            _memoryInfo = null;
            _shutdown = null;
            if (_library != IntPtr.Zero) NativeLibrary.Free(_library);
            _library = IntPtr.Zero;
        }
    }
}
