namespace NewBie.Pipeline;

public enum SamplerKind { Euler, Midpoint }

/// <summary>
/// One generation: what the server stores as a job's normalised parameters and hands to the engine.
/// Defaults: model-spec §5.3. Shift 6 and 1024² are what the official demo and ComfyUI use; 28 Euler steps with
/// CFG 5 and renorm 1 follow the model card's quick start (which the sampler implements on the shift-6 grid).
/// </summary>
public sealed record GenerationRequest
{
    public required string Prompt { get; init; }
    public string NegativePrompt { get; init; } = "";
    public int Width { get; init; } = 1024;
    public int Height { get; init; } = 1024;
    /// <summary>Euler: steps (one DiT call each, two with CFG). Midpoint: grid intervals = points − 1 (two calls each, four with CFG).</summary>
    public int Steps { get; init; } = 28;
    public double Guidance { get; init; } = 5.0;
    /// <summary>CFG runs only while t &lt; CfgTrunc (t = 0 is noise); 1.0 keeps CFG on every step.</summary>
    public double CfgTrunc { get; init; } = 1.0;
    /// <summary>Clamp ‖v‖ to RenormCfg·‖v_cond‖ (model-spec §5.2); 0 disables it.</summary>
    public double RenormCfg { get; init; } = 1.0;
    /// <summary>Static time shift of the σ / t grid, σ' = shift·σ / (1 + (shift − 1)·σ) (model-spec §5.1).</summary>
    public double Shift { get; init; } = 6.0;
    public SamplerKind Sampler { get; init; } = SamplerKind.Euler;
    /// <summary>The named preset the sampler settings started from (Sampling/SamplerPresets.cs); fields set explicitly override it.</summary>
    public string Preset { get; init; } = "default";
    /// <summary>Always resolved before a job is stored; image i of a count uses Seed + i.</summary>
    public long Seed { get; init; }
    public int Count { get; init; } = 1;
    /// <summary>"auto" (XML sentence for XML prompts, tag sentence otherwise), "none", or a literal system prompt.</summary>
    public string SystemPrompt { get; init; } = "auto";
    /// <summary>Decode in overlapping tiles (less memory, a tiny numeric difference): the degraded path after an out-of-memory error.</summary>
    public bool TiledDecode { get; init; }
}

public enum GenerationStage { Encoding, Denoising, Decoding }

/// <summary>Reported once per stage start and after every denoising step.</summary>
public readonly record struct StepProgress(GenerationStage Stage, int Step, int Steps, int Image, int Images);

/// <summary>One decoded image: 8-bit RGB, row-major, Height × Width × 3.</summary>
public sealed record GeneratedImage(int Index, int Width, int Height, long Seed, byte[] Rgb);

/// <summary>What the text side did with a prompt: token counts after templating, and how many were cut.</summary>
public sealed record PromptReport(int GemmaTokens, int GemmaTokensDropped, int JinaTokens, int JinaTokensDropped, string SystemPrompt);

public sealed record GenerationResult(IReadOnlyList<GeneratedImage> Images, PromptReport Prompt, PromptReport Negative);

/// <summary>What is loaded: the real model or the built-in tiny one, where, in which dtype, and under which memory plan.</summary>
public sealed record ModelInfo(string Id, bool IsTiny, string Device, string DType, TimeSpan LoadTime,
    NewBie.Pipeline.Memory.MemoryPlan MemoryPlan = NewBie.Pipeline.Memory.MemoryPlan.AllResident);

/// <summary>
/// Device memory of a generation: the weights already resident, and what one run adds at its peak (activations, an
/// encoder brought in on demand). Zero on a CPU engine, where the device is host memory and nothing is admitted.
/// </summary>
public readonly record struct MemoryNeed(long ResidentBytes, long RunBytes)
{
    /// <summary>Everything at once, runtime overhead included: more than the whole device can never fit.</summary>
    public long PeakBytes => ResidentBytes + RunBytes + NewBie.Pipeline.Memory.MemoryEstimate.RuntimeOverheadBytes;
}

/// <summary>The one call the server uses. Implemented by NewBiePipeline; generation runs synchronously on the calling thread.</summary>
public interface IImageGenerator : IDisposable
{
    ModelInfo Model { get; }

    /// <summary>Tokenizes only (no network runs): used to validate and report truncation at submit time.</summary>
    PromptReport Inspect(string prompt, string systemPrompt);

    /// <summary>Runs a request. Progress per step; the token is checked between steps (a cancelled run throws OperationCanceledException before the next step).</summary>
    GenerationResult Generate(GenerationRequest request, IProgress<StepProgress>? progress, CancellationToken cancellationToken);

    /// <summary>The device memory a request needs (the worker's admission check); nothing by default.</summary>
    MemoryNeed EstimateMemory(GenerationRequest request) => default;

    /// <summary>Raised on every prompt-embedding cache lookup (true: hit); engines without a cache never raise it.</summary>
    event Action<bool>? PromptCacheLookup
    {
        add { }
        remove { }
    }
}
