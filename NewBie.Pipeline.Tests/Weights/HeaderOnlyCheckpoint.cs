using System.Text;
using System.Text.Json;

namespace NewBie.Pipeline.Tests.Weights;

/// <summary>
/// Writes a real safetensors file whose header lists the given tensors and whose data region is a sparse hole of the
/// right length: a 7 GB checkpoint costs a few kilobytes of disk, and planning (headers only) sees the real layout.
/// </summary>
internal static class HeaderOnlyCheckpoint
{
    public static void Write(string path, IEnumerable<(string Key, string DType, long[] Shape)> tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (key, dtype, shape) in tensors)
        {
            var bytes = shape.Aggregate(1L, (a, b) => a * b) * (dtype switch { "F32" => 4, "BF16" or "F16" => 2, _ => throw new ArgumentException(dtype) });
            header[key] = new { dtype, shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var file = File.Create(path);
        file.Write(BitConverter.GetBytes((long)json.Length));
        file.Write(json);
        file.SetLength(8 + json.Length + offset);
    }

    /// <summary>Reads a "key\t[shape]" list (lines starting with # are comments).</summary>
    public static IEnumerable<(string Key, string DType, long[] Shape)> ReadKeyList(string path, string dtype) =>
        File.ReadLines(path)
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .Select(p => (p[0], dtype, p[1].Trim('[', ']').Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray()));
}
