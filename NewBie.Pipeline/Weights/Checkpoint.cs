using System.Text.Json;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Weights;

/// <summary>
/// A set of safetensors files read as one key space: a single file, a sharded checkpoint described by
/// <c>*.safetensors.index.json</c> (Hugging Face <c>weight_map</c>), or a folder holding either.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _byKey = new(StringComparer.Ordinal);

    public string Source { get; }
    public IReadOnlyCollection<string> Keys => _byKey.Keys;
    /// <summary>How many safetensors files back the key space (1 for a single file, the shard count for an index).</summary>
    public int FileCount => _files.Count;

    private Checkpoint(string source) => Source = source;

    /// <summary>Opens a .safetensors file, an .index.json, or a folder with exactly one of: an index, one .safetensors file.</summary>
    public static Checkpoint Open(string path)
    {
        var ckpt = new Checkpoint(path);
        try
        {
            if (Directory.Exists(path)) path = ResolveFolder(path);
            if (path.EndsWith(".index.json", StringComparison.Ordinal)) ckpt.AddShards(path);
            else ckpt.Add(SafetensorsFile.Open(path));
            return ckpt;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    /// <summary>Opens several single files as one key space (e.g. weights plus a separate adapter file).</summary>
    public static Checkpoint OpenFiles(IEnumerable<string> files)
    {
        var ckpt = new Checkpoint(string.Join(";", files));
        try
        {
            foreach (var f in files) ckpt.Add(SafetensorsFile.Open(f));
            return ckpt;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    private static string ResolveFolder(string folder)
    {
        var indexes = Directory.GetFiles(folder, "*.safetensors.index.json");
        if (indexes.Length == 1) return indexes[0];
        var files = Directory.GetFiles(folder, "*.safetensors");
        if (indexes.Length == 0 && files.Length == 1) return files[0];
        throw new WeightLoadException($"{folder}: expected one *.safetensors.index.json or one *.safetensors file, found {indexes.Length} index files and {files.Length} safetensors files");
    }

    private void AddShards(string indexPath)
    {
        var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        if (!doc.RootElement.TryGetProperty("weight_map", out var map))
            throw new WeightLoadException($"{indexPath}: no weight_map");
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            var shardName = entry.Value.GetString() ?? "";
            // Shard names come from a file on disk, but must still stay inside the checkpoint folder.
            if (shardName.Length == 0 || System.IO.Path.GetFileName(shardName) != shardName)
                throw new WeightLoadException($"{indexPath}: shard name '{shardName}' for '{entry.Name}' is not a plain file name");
            if (!shards.TryGetValue(shardName, out var shard))
            {
                var shardPath = System.IO.Path.Combine(dir, shardName);
                if (!File.Exists(shardPath)) throw new WeightLoadException($"{indexPath}: shard '{shardName}' is missing");
                shard = SafetensorsFile.Open(shardPath);
                shards[shardName] = shard;
                _files.Add(shard);
            }
            if (!shard.Tensors.ContainsKey(entry.Name))
                throw new WeightLoadException($"{indexPath}: '{entry.Name}' is mapped to '{shardName}', which does not contain it");
            _byKey[entry.Name] = shard;
        }
    }

    private void Add(SafetensorsFile file)
    {
        _files.Add(file);
        foreach (var key in file.Tensors.Keys)
        {
            if (!_byKey.TryAdd(key, file))
                throw new WeightLoadException($"tensor '{key}' appears in both {_byKey[key].Path} and {file.Path}");
        }
    }

    public bool Contains(string key) => _byKey.ContainsKey(key);
    public TensorInfo Info(string key) => FileOf(key).Tensors[key];
    public Tensor View(string key) => FileOf(key).View(key);
    public Tensor Read(string key, Device? device = null, ScalarType? dtype = null) => FileOf(key).Read(key, device, dtype);

    private SafetensorsFile FileOf(string key) =>
        _byKey.TryGetValue(key, out var f) ? f : throw new WeightLoadException($"{Source}: no tensor '{key}'");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byKey.Clear();
    }
}

public sealed class WeightLoadException(string message) : Exception(message);
