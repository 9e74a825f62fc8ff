using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Weights;

/// <summary>Name, dtype and shape of one tensor in a safetensors file, read from its header only.</summary>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// One safetensors file opened read-only and memory-mapped. Tensors are handed out as zero-copy CPU views
/// of the mapped pages (torchsharp-notes §2): no copy of the file passes through managed memory, and the
/// pages stay reclaimable page cache. A view is read-only and valid only while this object is alive.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private bool _disposed;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    // Views are made through LibTorchSharp directly; make sure TorchSharp has loaded its native libraries first.
    static SafetensorsFile() => torch.InitializeDeviceType(DeviceType.CPU);

    private SafetensorsFile(string path)
    {
        Path = path;
        var length = new FileInfo(path).Length;
        if (length < 8) throw new InvalidDataException($"{path}: not a safetensors file ({length} bytes)");
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
            _map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;

        long headerLength = *(long*)_base;
        if (headerLength <= 0 || 8 + headerLength > length)
            throw new InvalidDataException($"{path}: bad safetensors header length {headerLength}");
        _dataStart = 8 + headerLength;
        var header = new ReadOnlySpan<byte>(_base + 8, checked((int)headerLength));
        (Tensors, Metadata) = ParseHeader(header, length - _dataStart, path);
    }

    public static SafetensorsFile Open(string path) => new(path);

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(ReadOnlySpan<byte> json, long dataLength, string path)
    {
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(json.ToArray());
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                continue;
            }
            var dtype = prop.Value.GetProperty("dtype").GetString()!;
            var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var info = new TensorInfo(prop.Name, dtype, shape, offsets[0], offsets[1]);
            long expected = shape.Aggregate(1L, (a, b) => a * b) * ElementSize(dtype);
            if (offsets[0] < 0 || offsets[1] > dataLength || info.ByteLength != expected)
                throw new InvalidDataException($"{path}: tensor '{prop.Name}' has offsets [{offsets[0]}, {offsets[1]}) that do not fit its {dtype}{info.ShapeText} or the file");
            tensors[prop.Name] = info;
        }
        return (tensors, metadata);
    }

    public static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" or "F8_E4M3" or "F8_E5M2" => 1,
        _ => throw new NotSupportedException($"safetensors dtype {dtype} is not supported"),
    };

    public static ScalarType ToScalarType(string dtype) => dtype switch
    {
        "F64" => ScalarType.Float64,
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new NotSupportedException($"safetensors dtype {dtype} has no TorchSharp equivalent"),
    };

    /// <summary>A zero-copy CPU view of a tensor's bytes. Never write to it; copy it (copy_/to) before the file is disposed.</summary>
    public Tensor View(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!Tensors.TryGetValue(name, out var info)) throw new KeyNotFoundException($"{Path}: no tensor '{name}'");
        var type = ToScalarType(info.DType);
        var shape = info.Shape;
        // from_blob of zero bytes is fine, but the pointer must still be valid.
        var data = (IntPtr)(_base + _dataStart + info.Begin);
        IntPtr handle;
        fixed (long* s = shape.Length == 0 ? new long[1] : shape)
        {
            handle = Native.THSTensor_new(data, (IntPtr)(delegate* unmanaged<IntPtr, void>)&Native.NoDelete, s, shape.Length,
                (sbyte)type, (sbyte)type, (int)DeviceType.CPU, 0, false);
        }
        if (handle == IntPtr.Zero) torch.CheckForErrors();
        return Tensor.UnsafeCreateTensor(handle);
    }

    /// <summary>Reads one tensor into fresh memory on <paramref name="device"/> as <paramref name="dtype"/> (default: its stored dtype).</summary>
    public Tensor Read(string name, Device? device = null, ScalarType? dtype = null)
    {
        using var view = View(name);
        return view.to(dtype ?? view.dtype, device ?? CPU, copy: true);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }

    private static class Native
    {
        [DllImport("LibTorchSharp")]
        public static extern IntPtr THSTensor_new(IntPtr data, IntPtr deleter, long* sizes, int ndim,
            sbyte scalarType, sbyte dtype, int deviceType, int deviceIndex, [MarshalAs(UnmanagedType.U1)] bool requiresGrad);

        [UnmanagedCallersOnly]
        public static void NoDelete(IntPtr data) { }
    }
}
