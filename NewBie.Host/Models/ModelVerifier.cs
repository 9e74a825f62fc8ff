using NewBie.Pipeline;

namespace NewBie.Host.Models;

/// <summary>One check of <see cref="ModelVerifier"/>: what was checked, whether it passed, and what was found.</summary>
public sealed record VerifyFinding(string Subject, bool Ok, string Detail);

/// <summary>
/// Checks a models folder without loading it: the manifest's files are present (with their sizes and SHA-256 where
/// the manifest knows them), and then exactly what loading will do, from the same planning code
/// (<see cref="ModelPlan.For"/>): which weight file and layout, which settings (config.json or preset), every tensor
/// name and shape against the network built on the META device, and whether LoRA adapters are merged. Nothing is
/// allocated or read beyond the safetensors headers (files are opened read-only).
/// </summary>
public static class ModelVerifier
{
    public static async Task<IReadOnlyList<VerifyFinding>> VerifyAsync(ModelManifest manifest, string modelsDir, CancellationToken cancellationToken)
    {
        var findings = new List<VerifyFinding>();
        foreach (var file in manifest.Files)
            findings.Add(await CheckFileAsync(file, modelsDir, cancellationToken));

        var plan = ModelPlan.For(modelsDir, PipelineConfig.NewBieExp01);
        // A component whose weights are absent is already reported by the file check above.
        foreach (var component in plan.Components.Where(c => File.Exists(Path.Combine(modelsDir, c.Weights))))
            findings.Add(new VerifyFinding($"{component.Component} tensors", component.Ok, component.Summary));
        if (plan.ConfigError is { } error) findings.Add(new VerifyFinding("components", false, error));
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
}
