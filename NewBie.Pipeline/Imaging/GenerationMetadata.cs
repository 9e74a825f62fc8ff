using System.Globalization;

namespace NewBie.Pipeline.Imaging;

/// <summary>
/// The text chunks an output PNG carries: one A1111-style <c>parameters</c> string (what A1111, Forge, civitai and
/// most image browsers parse), the same values under individual keys for tools that read PNG text directly, and
/// <c>Software</c>.
/// </summary>
public static class GenerationMetadata
{
    public const string DefaultSoftware = "NewBie Server";

    /// <summary>The chunks for image <paramref name="image"/> of <paramref name="request"/>, in the order they are written.</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> For(GenerationRequest request, GeneratedImage image, string model,
        string software = DefaultSoftware) =>
    [
        new("parameters", Parameters(request, image, model)),
        new("prompt", request.Prompt),
        new("negative_prompt", request.NegativePrompt),
        new("seed", image.Seed.ToString(CultureInfo.InvariantCulture)),
        new("steps", request.Steps.ToString(CultureInfo.InvariantCulture)),
        new("guidance", Number(request.Guidance)),
        new("width", image.Width.ToString(CultureInfo.InvariantCulture)),
        new("height", image.Height.ToString(CultureInfo.InvariantCulture)),
        new("sampler", request.Sampler.ToString()),
        new("cfg_trunc", Number(request.CfgTrunc)),
        new("renorm", Number(request.RenormCfg)),
        new("shift", Number(request.Shift)),
        new("preset", request.Preset),
        new("model", model),
        new("Software", software),
    ];

    /// <summary>
    /// <c>"&lt;prompt&gt;\nNegative prompt: &lt;neg&gt;\nSteps: 28, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 1024x1024, Model: …,
    /// CFG truncation: 1, CFG renorm: 1, Shift: 6, Preset: default"</c>; like A1111, the negative line is left out when there
    /// is no negative prompt, and the settings A1111 has no name for follow as extra "Key: value" pairs.
    /// </summary>
    public static string Parameters(GenerationRequest request, GeneratedImage image, string model)
    {
        var negative = request.NegativePrompt.Length > 0 ? $"\nNegative prompt: {request.NegativePrompt}" : "";
        var sampler = string.Create(CultureInfo.InvariantCulture,
            $"CFG truncation: {Number(request.CfgTrunc)}, CFG renorm: {Number(request.RenormCfg)}, Shift: {Number(request.Shift)}, Preset: {request.Preset}");
        return string.Create(CultureInfo.InvariantCulture,
            $"{request.Prompt}{negative}\nSteps: {request.Steps}, Sampler: {request.Sampler}, CFG scale: {Number(request.Guidance)}, Seed: {image.Seed}, Size: {image.Width}x{image.Height}, Model: {model}, {sampler}");
    }

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
