namespace NewBie.Pipeline.Sampling;

/// <summary>
/// A named set of sampler settings. A request names one (<c>preset</c>) and may still set any of these fields itself;
/// what it sets wins. <see cref="Steps"/> means Euler steps for euler (one DiT call each, two with CFG) and grid
/// intervals for midpoint (points − 1; two DiT calls each, four with CFG).
/// </summary>
public sealed record SamplerPreset(string Name, SamplerKind Sampler, int Steps, double Guidance, double CfgTrunc, double RenormCfg, double Shift, string Source);

public static class SamplerPresets
{
    /// <summary>The server's defaults (<see cref="GenerationRequest"/>; README "Defaults and why").</summary>
    public static SamplerPreset Default { get; } = FromRequest("default", new GenerationRequest { Prompt = "" },
        "the model card's quick start (28 Euler steps, CFG 5, renorm 1) on the shift-6 grid of the demo and ComfyUI");

    /// <summary>
    /// The official gradio demo's settings: NewBieAI-Lab/NewBie-image-Exp0.1 <c>demo.py</c> (commit 83a828b) —
    /// solver "midpoint", "Sampling steps" 18 (grid points of <c>sample_ode</c>, i.e. 17 intervals), "CFG scale" 5.0,
    /// "CFG Truncation" 0.25, "CFG Renorm" 0.0, "Time shift" 6. Its system-prompt sentence is not a sampler setting.
    /// </summary>
    public static SamplerPreset Demo { get; } = new("demo", SamplerKind.Midpoint, 17, 5.0, 0.25, 0.0, 6.0,
        "the official demo.py: midpoint on 18 grid points (17 intervals), CFG 5 truncated at t = 0.25, renorm off, shift 6");

    public static IReadOnlyList<SamplerPreset> All { get; } = [Default, Demo];

    /// <summary>The preset of that name (case-sensitive, as on the wire); null names the default; unknown names give null.</summary>
    public static SamplerPreset? Find(string? name) => name is null ? Default : All.FirstOrDefault(p => p.Name == name);

    public static string Names => string.Join(", ", All.Select(p => p.Name));

    /// <summary>The request with every sampler setting from the preset (callers then apply what was set explicitly).</summary>
    public static GenerationRequest Apply(this SamplerPreset preset, GenerationRequest request) => request with
    {
        Sampler = preset.Sampler,
        Steps = preset.Steps,
        Guidance = preset.Guidance,
        CfgTrunc = preset.CfgTrunc,
        RenormCfg = preset.RenormCfg,
        Shift = preset.Shift,
        Preset = preset.Name,
    };

    private static SamplerPreset FromRequest(string name, GenerationRequest r, string source) =>
        new(name, r.Sampler, r.Steps, r.Guidance, r.CfgTrunc, r.RenormCfg, r.Shift, source);
}
