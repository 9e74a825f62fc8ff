using NewBie.Pipeline;

namespace NewBie.Host.Models;

public sealed class ModelsOptions
{
    public const string Section = "Models";

    public const string Auto = "auto", Tiny = "tiny", NewBieExp01 = "newbie-exp0.1";

    /// <summary>Folder mirroring the Hugging Face repo NewBie-AI/NewBie-image-Exp0.1. Default "models". Restart needed.</summary>
    public string ModelsDir { get; set; } = "models";

    /// <summary>auto (the real weights when present, else the built-in tiny model), tiny, or newbie-exp0.1. Default auto. Restart needed.</summary>
    public string Model { get; set; } = Auto;

    /// <summary>
    /// auto (from free VRAM at start, see README "GPU memory"), all-resident, encoders-on-demand or encoders-on-cpu.
    /// Default auto. Restart needed.
    /// </summary>
    public string MemoryPlan { get; set; } = Auto;

    /// <summary>Device bytes the prompt-embedding cache may hold; 0 disables it. Default 256 MiB. Restart needed.</summary>
    public long PromptCacheBytes { get; set; } = PipelineOptions.DefaultPromptCacheBytes;
}

/// <summary>Which model to load, resolved from the options and what is on disk.</summary>
public sealed record ModelChoice(string Id, bool IsTiny, string? WeightsDir, string Reason)
{
    public static ModelChoice Resolve(ModelsOptions options)
    {
        var dir = AppInfo.ResolvePath(options.ModelsDir);
        var folder = new ModelFolder(dir);
        var present = folder.IsComplete;
        return options.Model switch
        {
            ModelsOptions.Tiny => new ModelChoice(ModelsOptions.Tiny, true, null, "--model tiny"),
            ModelsOptions.NewBieExp01 => present
                ? new ModelChoice(ModelsOptions.NewBieExp01, false, dir, "--model newbie-exp0.1")
                : throw new EngineUnavailableException($"--model newbie-exp0.1 but the weights in {dir} are incomplete: missing {string.Join(", ", folder.Missing())}. Run `NewBie models pull`."),
            ModelsOptions.Auto => present
                ? new ModelChoice(ModelsOptions.NewBieExp01, false, dir, $"weights found in {dir}")
                : new ModelChoice(ModelsOptions.Tiny, true, null, $"no weights in {dir}: serving the built-in TINY model with random weights, images will be noise"),
            _ => throw new EngineUnavailableException($"Unknown model '{options.Model}' (auto, tiny or newbie-exp0.1)."),
        };
    }
}
