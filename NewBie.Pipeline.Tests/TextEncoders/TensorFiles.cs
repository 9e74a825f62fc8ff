using System.Text.Json;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.TextEncoders;

/// <summary>Reading fixture tensors, writing modified checkpoint copies, and the comparisons the parity tests use.</summary>
internal static class TensorFiles
{
    /// <summary>Every tensor of a safetensors file, copied out of the mapping.</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.Keys.ToDictionary(k => k, k => file.Read(k), StringComparer.Ordinal);
    }

    /// <summary>Writes the tensors as a two-shard checkpoint with a Hugging Face index (keys alternate between shards).</summary>
    public static void WriteSharded(string dir, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var keys = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        var map = new Dictionary<string, string>();
        for (int shard = 0; shard < 2; shard++)
        {
            var name = $"model-{shard + 1:00000}-of-00002.safetensors";
            var part = keys.Where((_, i) => i % 2 == shard).ToDictionary(k => k, k => tensors[k]);
            SafetensorsWriter.Write(Path.Combine(dir, name), part);
            foreach (var k in part.Keys) map[k] = name;
        }
        File.WriteAllText(Path.Combine(dir, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));
    }

    /// <summary>max |actual − expected| over positions where mask [B, L] is 1 (all positions when mask is null), in float64.</summary>
    public static double MaxAbsDiff(Tensor actual, Tensor expected, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        var diff = (actual.to(float64).cpu() - expected.to(float64).cpu()).abs();
        if (mask is not null) diff = diff * mask.to(float64).cpu().unsqueeze(-1);
        return diff.max().item<double>();
    }

    public static double MaxAbs(Tensor t, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        var a = t.to(float64).cpu().abs();
        if (mask is not null) a = a * mask.to(float64).cpu().unsqueeze(-1);
        return a.max().item<double>();
    }

    /// <summary>The smallest cosine similarity between matching vectors (last dim) of a and b, over real positions.</summary>
    public static double MinCosine(Tensor a, Tensor b, Tensor? mask = null)
    {
        using var scope = torch.NewDisposeScope();
        var cos = nn.functional.cosine_similarity(a.to(float64).cpu(), b.to(float64).cpu(), dim: -1);
        if (mask is not null) cos = cos.masked_fill(mask.cpu().eq(0), 1.0);
        return cos.min().item<double>();
    }
}
