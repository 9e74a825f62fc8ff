using System.Text.Json;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;

namespace NewBie.Pipeline;

/// <summary>What loading will do with one component folder, or why it cannot.</summary>
/// <param name="Component">Folder name in the released layout: transformer, text_encoder, clip_model, vae.</param>
/// <param name="Weights">The weight file loading opens (a single .safetensors or a sharded index).</param>
/// <param name="ConfigSource">Where the network's settings come from: the component's config.json, or the preset.</param>
/// <param name="Layout">Single file or how many shards.</param>
/// <param name="Tensors">Tensors copied into the network.</param>
/// <param name="Adapters">What happens to LoRA adapters stored in the checkpoint (Jina), else empty.</param>
/// <param name="Error">Why loading would fail; null when it will succeed.</param>
public sealed record ComponentPlan(string Component, string Weights, string ConfigSource, string Layout, int Tensors, string Adapters, string? Error)
{
    public bool Ok => Error is null;

    /// <summary>One line, the same for <c>models verify</c> and for the loading log or error.</summary>
    public string Summary => Ok
        ? $"{Tensors} tensors match the architecture; {Layout}; settings from {ConfigSource}" + (Adapters.Length > 0 ? $"; {Adapters}" : "")
        : Error!;
}

/// <summary>
/// The one planning code path for a model folder, used by loading (<see cref="NewBiePipeline.Load"/>) and by
/// <c>models verify</c>: each component's settings are read from its own <c>config.json</c> when present (the preset
/// only as a fallback), the weight file is resolved as loading resolves it, and every tensor name and shape is
/// planned against the network built on the META device (headers only, nothing allocated), LoRA adapter stacks
/// included. The same folder therefore gets the same verdict and the same messages from both.
/// </summary>
public sealed record ModelPlan(string Folder, PipelineConfig Config, IReadOnlyList<string> Missing, IReadOnlyList<ComponentPlan> Components,
    string? ConfigError)
{
    public bool Ok => Missing.Count == 0 && ConfigError is null && Components.All(c => c.Ok);

    /// <summary>Every reason loading would fail, one per line.</summary>
    public IReadOnlyList<string> Problems =>
    [
        .. Missing.Count > 0 ? [$"model folder {Folder} is incomplete: missing {string.Join(", ", Missing)}"] : Array.Empty<string>(),
        .. Components.Where(c => !c.Ok).Select(c => $"{c.Component}: {c.Error}"),
        .. ConfigError is null ? Array.Empty<string>() : [ConfigError],
    ];

    /// <summary>Throws <see cref="WeightLoadException"/> listing <see cref="Problems"/> unless the folder will load.</summary>
    public void EnsureLoadable()
    {
        if (!Ok) throw new WeightLoadException(string.Join(Environment.NewLine, Problems));
    }

    /// <summary>Plans <paramref name="folder"/> (released layout, see <see cref="ModelFolder"/>); <paramref name="presets"/> fill in absent config.json files.</summary>
    public static ModelPlan For(string folder, PipelineConfig presets)
    {
        var layout = new ModelFolder(folder);
        var components = new List<ComponentPlan>();

        var dit = Plan(components, "transformer", layout.Transformer, layout.TransformerWeights, NextDiTConfig.Load, presets.NextDiT, (config, checkpoint) =>
        {
            using var model = new NextDiT(config, torch.META, torch.ScalarType.BFloat16);
            return (WeightLoader.Plan(model, checkpoint, NextDiT.KeyMapFor(checkpoint), "NextDiT").Count, "");
        });
        var gemma = Plan(components, "text_encoder", layout.TextEncoder, layout.GemmaWeights, GemmaConfig.Read, presets.Gemma, (config, checkpoint) =>
        {
            using var model = new GemmaTextEncoder(config, torch.META, torch.ScalarType.BFloat16);
            return (WeightLoader.Plan(model, checkpoint, GemmaTextEncoder.KeyMap(checkpoint, config), "Gemma-3 text encoder").Count, "");
        });
        var jina = Plan(components, "clip_model", layout.ClipModel, layout.JinaWeights, JinaConfig.Read, presets.Jina, (config, checkpoint) =>
        {
            using var model = new JinaTextEncoder(config, torch.META, torch.ScalarType.BFloat16);
            var count = WeightLoader.Plan(model, checkpoint, JinaTextEncoder.KeyMapFor(checkpoint).Map, "Jina CLIP v2 text tower").Count;
            return (count, JinaTextEncoder.DescribeAdapters(checkpoint, config));
        });
        var vae = Plan(components, "vae", layout.Vae, layout.VaeWeights, path => VaeConfig.FromJson(File.ReadAllText(path)), presets.Vae, (config, checkpoint) =>
        {
            using var model = new FluxVaeDecoder(config, torch.META, torch.ScalarType.BFloat16);
            return (WeightLoader.Plan(model, checkpoint, FluxVaeDecoder.KeyMap, "FLUX VAE decoder").Count, "");
        });

        var config = presets with { Gemma = gemma, Jina = jina, NextDiT = dit, Vae = vae };
        string? configError = null;
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            configError = $"the components do not fit together: {e.Message}";
        }
        return new ModelPlan(folder, config, layout.Missing(), components, configError);
    }

    private static T Plan<T>(List<ComponentPlan> plans, string component, string dir, string weights, Func<string, T> read, T preset,
        Func<T, Checkpoint, (int Tensors, string Adapters)> plan)
    {
        var configPath = Path.Combine(dir, "config.json");
        var source = File.Exists(configPath) ? $"{component}/config.json" : "the built-in preset (no config.json)";
        var relative = Path.Combine(component, Path.GetFileName(weights));
        T config = preset;
        try
        {
            if (File.Exists(configPath)) config = read(configPath);
        }
        catch (Exception e) when (e is JsonException or ArgumentException or IOException or InvalidOperationException)
        {
            plans.Add(new ComponentPlan(component, relative, source, "", 0, "", $"{component}/config.json cannot be used: {e.Message}"));
            return preset;
        }
        if (!File.Exists(weights))
        {
            plans.Add(new ComponentPlan(component, relative, source, "", 0, "", $"{relative} is missing"));
            return config;
        }
        try
        {
            using var checkpoint = Checkpoint.Open(weights);
            var layout = checkpoint.FileCount == 1 ? $"{relative}, one file" : $"{relative}, {checkpoint.FileCount} shards";
            var (tensors, adapters) = plan(config, checkpoint);
            plans.Add(new ComponentPlan(component, relative, source, layout, tensors, adapters, null));
        }
        catch (Exception e) when (e is WeightLoadException or ArgumentException or InvalidDataException or IOException or JsonException)
        {
            plans.Add(new ComponentPlan(component, relative, source, "", 0, "", e.Message));
        }
        return config;
    }
}
