using NewBie.Pipeline;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;

namespace NewBie.Host.Models;

/// <summary>One check of <see cref="ModelVerifier"/>: what was checked, whether it passed, and what was found.</summary>
public sealed record VerifyFinding(string Subject, bool Ok, string Detail);

/// <summary>
/// Checks a models folder without loading it: the manifest's files are present (with their sizes and SHA-256 where
/// the manifest knows them), and every network's weight file has exactly the tensor names and shapes its
/// architecture expects — planned against modules built on the META device, so nothing is allocated or read beyond
/// the safetensors headers (files are opened read-only).
/// </summary>
public static class ModelVerifier
{
    public static async Task<IReadOnlyList<VerifyFinding>> VerifyAsync(ModelManifest manifest, string modelsDir, CancellationToken cancellationToken)
    {
        var findings = new List<VerifyFinding>();
        foreach (var file in manifest.Files)
            findings.Add(await CheckFileAsync(file, modelsDir, cancellationToken));

        var folder = new ModelFolder(modelsDir);
        findings.AddRange(Architecture("transformer", folder.TransformerWeights, checkpoint =>
        {
            var config = ConfigOr(folder.Transformer, NextDiTConfig.Load, NextDiTConfig.NewBie3B);
            using var model = new NextDiT(config, torch.META, torch.ScalarType.BFloat16);
            return WeightLoader.Plan(model, checkpoint, NextDiT.KeyMapFor(checkpoint), "NextDiT").Count;
        }));
        findings.AddRange(Architecture("text_encoder", folder.GemmaWeights, checkpoint =>
        {
            var config = ConfigOr(folder.TextEncoder, GemmaConfig.Read, GemmaConfig.Gemma3_4B);
            using var model = new GemmaTextEncoder(config, torch.META, torch.ScalarType.BFloat16);
            return WeightLoader.Plan(model, checkpoint, GemmaTextEncoder.KeyMap(checkpoint, config), "Gemma-3 text encoder").Count;
        }));
        findings.AddRange(Architecture("clip_model", folder.JinaWeights, checkpoint =>
        {
            var config = ConfigOr(folder.ClipModel, JinaConfig.Read, JinaConfig.JinaClipV2);
            using var model = new JinaTextEncoder(config, torch.META, torch.ScalarType.BFloat16);
            return WeightLoader.Plan(model, checkpoint, JinaTextEncoder.KeyMapFor(checkpoint).Map, "Jina CLIP v2 text tower").Count;
        }));
        findings.AddRange(Architecture("vae", folder.VaeWeights, checkpoint =>
        {
            var config = ConfigOr(folder.Vae, path => VaeConfig.FromJson(File.ReadAllText(path)), VaeConfig.FluxVae);
            using var model = new FluxVaeDecoder(config, torch.META, torch.ScalarType.BFloat16);
            return WeightLoader.Plan(model, checkpoint, FluxVaeDecoder.KeyMap, "FLUX VAE decoder").Count;
        }));
        return findings;
    }

    private static async Task<VerifyFinding> CheckFileAsync(ManifestFile file, string modelsDir, CancellationToken cancellationToken)
    {
        var path = Path.Combine(modelsDir, file.Path.Replace('/', Path.DirectorySeparatorChar));
        if (!File.Exists(path))
        {
            var partial = File.Exists(path + ModelDownloader.PartSuffix) ? " (a partial download is there: run models pull to resume)" : "";
            return file.Required
                ? new VerifyFinding(file.Path, false, "missing" + partial)
                : new VerifyFinding(file.Path, true, "absent (optional)" + partial);
        }
        var length = new FileInfo(path).Length;
        if (file.Size is { } size && length != size) return new VerifyFinding(file.Path, false, $"{length} bytes; the manifest says {size}");
        if (file.Sha256 is { } expected)
        {
            var actual = await ModelDownloader.Sha256Async(path, cancellationToken);
            if (actual != expected) return new VerifyFinding(file.Path, false, $"SHA-256 {actual} does not match the manifest's {expected}");
            return new VerifyFinding(file.Path, true, $"{length} bytes, SHA-256 matches");
        }
        return new VerifyFinding(file.Path, true, $"{length} bytes (the manifest knows no {(file.Size is null ? "size or " : "")}digest to check)");
    }

    /// <summary>Nothing when the weights are absent: the file check already says so.</summary>
    private static IEnumerable<VerifyFinding> Architecture(string component, string weights, Func<Checkpoint, int> plan)
    {
        if (!File.Exists(weights)) return [];
        var subject = $"{component} tensors";
        try
        {
            using var checkpoint = Checkpoint.Open(weights);
            var count = plan(checkpoint);
            return [new VerifyFinding(subject, true, $"{count} tensors match the architecture")];
        }
        catch (Exception e) when (e is WeightLoadException or ArgumentException or InvalidDataException or IOException or System.Text.Json.JsonException)
        {
            return [new VerifyFinding(subject, false, e.Message)];
        }
    }

    /// <summary>The folder's config.json when it has one (a fine-tune may differ), else the released preset.</summary>
    private static T ConfigOr<T>(string componentDir, Func<string, T> read, T released)
    {
        var path = Path.Combine(componentDir, "config.json");
        return File.Exists(path) ? read(path) : released;
    }
}
