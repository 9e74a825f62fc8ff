using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;
using NewBie.Pipeline;
using NewBie.Pipeline.Sampling;

namespace NewBie.Host.Api;

/// <summary>Body of POST /v1/jobs (snake_case on the wire). Absent fields take the defaults of model-spec §5.3.</summary>
public sealed record SubmitJobRequest(
    string? Prompt,
    string? NegativePrompt = null,
    int? Width = null,
    int? Height = null,
    int? Steps = null,
    double? Guidance = null,
    string? Sampler = null,
    long? Seed = null,
    int? Count = null,
    string? SystemPrompt = null,
    string? Priority = null,
    string? WebhookUrl = null,
    double? CfgTrunc = null,
    double? Renorm = null,
    double? Shift = null,
    string? Preset = null);

/// <summary>A request that failed validation: the problem code, the field at fault (if one), and why.</summary>
public sealed record RequestError(string Code, string? Field, string Detail)
{
    public IResult ToResult() => Problems.Create(StatusCodes.Status400BadRequest, Code, Detail, Field);
}

/// <summary>Checks a submitted request against the limits and fills in every default, resolving the seed.</summary>
public sealed class JobRequestValidator(IOptions<LimitsOptions> limits)
{
    /// <summary>Seeds stay below 2^53 so that JavaScript clients read them back exactly.</summary>
    public const long MaxSeed = (1L << 53) - 1;

    private static readonly GenerationRequest Defaults = new() { Prompt = "" };

    public (JobParams? Params, int Priority, RequestError? Error) Validate(SubmitJobRequest request)
    {
        var l = limits.Value;
        if (string.IsNullOrWhiteSpace(request.Prompt)) return Fail(ProblemCodes.InvalidPrompt, "prompt", "prompt is required.");
        // The prompts travel into the PNG's text chunks and the tokenizers: what they cannot carry is refused here, not at the end of the run.
        if (TextProblem(request.Prompt) is { } promptText) return Fail(ProblemCodes.InvalidPrompt, "prompt", $"prompt {promptText}");
        if (TextProblem(request.NegativePrompt) is { } negativeText) return Fail(ProblemCodes.InvalidParameter, "negative_prompt", $"negative_prompt {negativeText}");
        if (TextProblem(request.SystemPrompt) is { } systemText) return Fail(ProblemCodes.InvalidParameter, "system_prompt", $"system_prompt {systemText}");
        if (request.Prompt.Length > l.MaxPromptChars) return Fail(ProblemCodes.InvalidPrompt, "prompt", $"prompt is {request.Prompt.Length} characters; the limit is {l.MaxPromptChars}.");
        if (PromptXml.LooksLikeXml(request.Prompt) && PromptXml.Check(request.Prompt, l.MaxXmlDepth, l.MaxPromptChars) is { } xmlError)
            return Fail(ProblemCodes.InvalidPrompt, "prompt", xmlError);
        var negative = request.NegativePrompt ?? Defaults.NegativePrompt;
        if (negative.Length > l.MaxPromptChars) return Fail(ProblemCodes.InvalidParameter, "negative_prompt", $"negative_prompt is longer than {l.MaxPromptChars} characters.");
        if (PromptXml.LooksLikeXml(negative) && PromptXml.Check(negative, l.MaxXmlDepth, l.MaxPromptChars) is { } negativeError)
            return Fail(ProblemCodes.InvalidParameter, "negative_prompt", negativeError);

        var width = request.Width ?? Defaults.Width;
        var height = request.Height ?? Defaults.Height;
        if (SideError("width", width, l) is { } widthError) return (null, 0, widthError);
        if (SideError("height", height, l) is { } heightError) return (null, 0, heightError);
        if ((long)width * height > l.MaxPixels) return Fail(ProblemCodes.InvalidParameter, "width", $"{width}×{height} is more than {l.MaxPixels} pixels.");

        if (SamplerPresets.Find(request.Preset) is not { } preset)
            return Fail(ProblemCodes.InvalidParameter, "preset", $"preset must be one of {SamplerPresets.Names}.");
        if (SamplerError(request) is { } samplerError) return (null, 0, samplerError);
        var steps = request.Steps ?? preset.Steps;
        if (steps < 1 || steps > l.MaxSteps) return Fail(ProblemCodes.InvalidParameter, "steps", $"steps must be 1-{l.MaxSteps}.");
        var guidance = request.Guidance ?? preset.Guidance;
        if (!double.IsFinite(guidance) || guidance < 0 || guidance > l.MaxGuidance) return Fail(ProblemCodes.InvalidParameter, "guidance", $"guidance must be 0-{l.MaxGuidance}.");
        var count = request.Count ?? Defaults.Count;
        if (count < 1 || count > l.MaxCount) return Fail(ProblemCodes.InvalidParameter, "count", $"count must be 1-{l.MaxCount}.");
        SamplerKind? sampler = request.Sampler switch { null => preset.Sampler, "euler" => SamplerKind.Euler, "midpoint" => SamplerKind.Midpoint, _ => null };
        if (sampler is null) return Fail(ProblemCodes.InvalidParameter, "sampler", "sampler must be euler or midpoint.");
        if (request.Seed is < 0 or > MaxSeed) return Fail(ProblemCodes.InvalidParameter, "seed", $"seed must be 0-{MaxSeed}.");
        var systemPrompt = request.SystemPrompt ?? Defaults.SystemPrompt;
        if (systemPrompt.Length > l.MaxPromptChars) return Fail(ProblemCodes.InvalidParameter, "system_prompt", $"system_prompt is longer than {l.MaxPromptChars} characters.");
        if (JobPriority.Parse(request.Priority) is not { } priority) return Fail(ProblemCodes.InvalidParameter, "priority", "priority must be high, normal or low.");

        var normalised = new JobParams
        {
            Prompt = request.Prompt,
            NegativePrompt = negative,
            Width = width,
            Height = height,
            Steps = steps,
            Guidance = guidance,
            Sampler = sampler.Value,
            Seed = request.Seed ?? Random.Shared.NextInt64(0, MaxSeed),
            Count = count,
            SystemPrompt = systemPrompt,
            CfgTrunc = request.CfgTrunc ?? preset.CfgTrunc,
            RenormCfg = request.Renorm ?? preset.RenormCfg,
            Shift = request.Shift ?? preset.Shift,
            Preset = preset.Name,
        };
        return (normalised, priority, null);
    }

    /// <summary>
    /// Why a text field cannot be stored in a PNG text chunk as it is, or null: a NUL ends a chunk's keyword, other C0
    /// controls (except tab, line feed and carriage return) are not text, and a lone surrogate has no UTF-8 form.
    /// </summary>
    public static string? TextProblem(string? value)
    {
        if (value is null) return null;
        for (var i = 0; i < value.Length; i++)
        {
            var ch = value[i];
            if (ch == '\0') return $"contains a NUL character at position {i}.";
            if (char.IsControl(ch) && ch < ' ' && ch is not ('\t' or '\n' or '\r'))
                return $"contains the control character U+{(int)ch:X4} at position {i}.";
            if (char.IsHighSurrogate(ch) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) i++;
            else if (char.IsSurrogate(ch)) return $"contains an unpaired surrogate at position {i}.";
        }
        return null;
    }

    /// <summary>cfg_trunc is a time in [0, 1] (1 = CFG on every step); renorm 0 turns the clamp off; shift 1 is no shift.</summary>
    private static RequestError? SamplerError(SubmitJobRequest r) =>
        r.CfgTrunc is { } trunc && !(trunc is >= 0 and <= 1) ? new(ProblemCodes.InvalidParameter, "cfg_trunc", "cfg_trunc must be 0-1.")
        : r.Renorm is { } renorm && !(renorm is >= 0 and <= MaxRenorm) ? new(ProblemCodes.InvalidParameter, "renorm", $"renorm must be 0-{MaxRenorm}.")
        : r.Shift is { } shift && !(shift is > 0 and <= MaxShift) ? new(ProblemCodes.InvalidParameter, "shift", $"shift must be more than 0 and at most {MaxShift}.")
        : null;

    public const double MaxRenorm = 10, MaxShift = 20;

    private static RequestError? SideError(string field, int side, LimitsOptions l) =>
        side % 16 != 0 || side < l.MinSide || side > l.MaxSide
            ? new RequestError(ProblemCodes.InvalidParameter, field, $"{field} must be a multiple of 16 from {l.MinSide} to {l.MaxSide}; got {side}.")
            : null;

    private static (JobParams?, int, RequestError?) Fail(string code, string field, string detail) => (null, 0, new RequestError(code, field, detail));
}
