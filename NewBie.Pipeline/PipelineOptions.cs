using NewBie.Pipeline.Memory;

namespace NewBie.Pipeline;

/// <summary>Run-time options of a loaded pipeline (as opposed to <see cref="PipelineConfig"/>, the model's shape).</summary>
public sealed record PipelineOptions
{
    public const long DefaultPromptCacheBytes = 256L << 20;

    /// <summary>Device bytes the prompt-embedding cache may hold; 0 disables it.</summary>
    public long PromptCacheBytes { get; init; } = DefaultPromptCacheBytes;

    /// <summary>Where the text encoders live (design.md §5); the host chooses it from free VRAM. Default all resident.</summary>
    public MemoryPlan MemoryPlan { get; init; } = MemoryPlan.AllResident;

    /// <summary>Injected out-of-memory faults, for testing recovery; null for none.</summary>
    public FaultInjection? FaultOom { get; init; }

    /// <summary>Defaults, with fault injection read from <c>NEWBIE_FAULT_OOM</c> (or from <paramref name="variables"/>).</summary>
    public static PipelineOptions FromEnvironment(Func<string, string?>? variables = null) =>
        new() { FaultOom = FaultInjection.Parse((variables ?? Environment.GetEnvironmentVariable)(FaultInjection.EnvironmentVariable)) };
}
