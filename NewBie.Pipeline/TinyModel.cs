using System.Text.Json;
using NewBie.Pipeline.Tokenizers;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline;

/// <summary>
/// The built-in tiny model: the real architecture at toy sizes with deterministic random weights and generated
/// tokenizer files, written as a model folder in the released Hugging Face layout so that it is served by exactly
/// the same loading and generation code as the real weights. It makes noise-like images in seconds on a CPU.
/// </summary>
public static class TinyModel
{
    /// <summary>Bump when the tiny architecture or its weights change, so old folders are rewritten.</summary>
    public const int Version = 2;
    public const long Seed = 20_251_125;
    private const string Marker = "newbie-tiny.json";

    /// <summary>Writes the tiny model folder unless an identical version is already there; returns the folder.</summary>
    public static string EnsureFolder(string folder)
    {
        var marker = Path.Combine(folder, Marker);
        if (File.Exists(marker) && ReadVersion(marker) == Version && new ModelFolder(folder).IsComplete) return folder;

        // Written beside the target and moved into place, so a crash never leaves a half-written model that looks complete.
        var parent = Path.GetDirectoryName(Path.GetFullPath(folder))!;
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(folder)}.{Environment.ProcessId}.tmp");
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Write(staging);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(staging, folder);
        return folder;
    }

    private static int ReadVersion(string marker)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(marker));
            return doc.RootElement.GetProperty("version").GetInt32();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return -1;
        }
    }

    private static void Write(string folder)
    {
        var config = PipelineConfig.Tiny;
        var layout = new ModelFolder(folder);
        foreach (var dir in new[] { layout.Transformer, layout.TextEncoder, layout.ClipModel, layout.Vae }) Directory.CreateDirectory(dir);
        TinyTokenizers.Write(layout.TextEncoder, layout.ClipModel);

        using (var gemma = GemmaTextEncoder.CreateRandom(config.Gemma, Seed + 1, CPU, float32))
            Save(layout.GemmaWeights, gemma);
        using (var jina = JinaTextEncoder.CreateRandom(config.Jina, Seed + 2, CPU, float32))
            Save(layout.JinaWeights, jina);
        using (var dit = NextDiT.CreateRandom(config.NextDiT, Seed + 3, CPU, float32))
            Save(layout.TransformerWeights, dit);
        using (var vae = FluxVaeDecoder.CreateRandom(config.Vae, Seed + 4, CPU, float32))
            Save(layout.VaeWeights, vae);

        File.WriteAllText(Path.Combine(folder, Marker), JsonSerializer.Serialize(new
        {
            version = Version,
            description = "NewBie built-in tiny model: the NewBie-image-Exp0.1 architecture at toy sizes with random weights. Its images are noise-like by design.",
        }));
    }

    private static void Save(string path, nn.Module module) =>
        SafetensorsWriter.Write(path, module.state_dict(), new Dictionary<string, string> { ["format"] = "pt", ["newbie"] = "tiny" });
}
