using LiteDB;
using NewBie.Host.Api;
using NewBie.Host.Jobs;

namespace NewBie.Host.Studio;

/// <summary>The studio's prompt and parameters as a user last submitted them: the form opens with them next time.</summary>
public sealed class StudioSettings
{
    [BsonId] public string UserId { get; set; } = "";
    public int Width { get; set; } = 1024;
    public int Height { get; set; } = 1024;
    public int Steps { get; set; } = 28;
    public double Guidance { get; set; } = 5;
    public string Sampler { get; set; } = "euler";
    /// <summary>The engine's named sampler preset the settings started from (Sampling/SamplerPresets.cs).</summary>
    public string Preset { get; set; } = "default";
    public double CfgTrunc { get; set; } = 1.0;
    public double Renorm { get; set; } = 1.0;
    public double Shift { get; set; } = 6.0;
    /// <summary>Null: a new random seed per submit.</summary>
    public long? Seed { get; set; }
    public int Count { get; set; } = 1;
    public string NegativePrompt { get; set; } = "";
    public string Prompt { get; set; } = "";

    /// <summary>A job's parameters as settings (the seed and prompt too): what "run again" and "open in editor" start from.</summary>
    public static StudioSettings Of(JobParams p) => new()
    {
        Width = p.Width, Height = p.Height, Steps = p.Steps, Guidance = p.Guidance, Sampler = p.Sampler.ToString().ToLowerInvariant(),
        Preset = p.Preset, CfgTrunc = p.CfgTrunc, Renorm = p.RenormCfg, Shift = p.Shift,
        Seed = p.Seed, Count = p.Count, NegativePrompt = p.NegativePrompt, Prompt = p.Prompt,
    };

    /// <summary>
    /// The submit these settings make. Every sampler field is sent explicitly, so the job is what the form shows
    /// whatever the preset (a preset only fills the form; the fields sent win, as on the API).
    /// </summary>
    public SubmitJobRequest Request(string prompt, long? seed, string? systemPrompt = null) =>
        new(prompt, NegativePrompt, Width, Height, Steps, Guidance, Sampler, seed, Count, systemPrompt,
            CfgTrunc: CfgTrunc, Renorm: Renorm, Shift: Shift, Preset: Preset);
}

/// <summary>Where the studio keeps each user's last settings (LiteDB by default; chosen in StorageSetup).</summary>
public interface IStudioSettingsStore
{
    StudioSettings? Find(string userId);

    void Save(StudioSettings settings);
}
