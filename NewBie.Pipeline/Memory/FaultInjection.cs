using System.Runtime.InteropServices;

namespace NewBie.Pipeline.Memory;

public enum PipelineStage { Encode, Denoise, Vae }

/// <summary>
/// Makes one stage throw exactly what a real CUDA out-of-memory throws, for its first N runs, so the recovery path can
/// be exercised without a GPU. Configured by <c>NEWBIE_FAULT_OOM=&lt;stage&gt;:&lt;count&gt;</c> (stages encode,
/// denoise, vae), read once per pipeline; tests pass the spec through <see cref="PipelineOptions"/> instead.
/// </summary>
public sealed class FaultInjection
{
    public const string EnvironmentVariable = "NEWBIE_FAULT_OOM";

    private int _remaining;

    public PipelineStage Stage { get; }
    public int Remaining => Volatile.Read(ref _remaining);

    public FaultInjection(PipelineStage stage, int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), "the fault count cannot be negative");
        Stage = stage;
        _remaining = count;
    }

    /// <summary>Parses "stage:count"; null or empty means no fault. A malformed spec is an error, not silently ignored.</summary>
    public static FaultInjection? Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) return null;
        var parts = spec.Split(':');
        PipelineStage? stage = parts[0].Trim().ToLowerInvariant() switch
        {
            "encode" => PipelineStage.Encode,
            "denoise" => PipelineStage.Denoise,
            "vae" => PipelineStage.Vae,
            _ => null,
        };
        if (parts.Length != 2 || stage is null || !int.TryParse(parts[1], out var count) || count < 0)
            throw new ArgumentException($"{EnvironmentVariable} must be <encode|denoise|vae>:<count>, got '{spec}'");
        return new FaultInjection(stage.Value, count);
    }

    /// <summary>Throws an injected out-of-memory if <paramref name="stage"/> still has faults left.</summary>
    public void Check(PipelineStage stage)
    {
        if (stage != Stage) return;
        if (Interlocked.Decrement(ref _remaining) < 0)
        {
            Interlocked.Increment(ref _remaining);
            return;
        }
        throw new ExternalException($"{OutOfMemory.CudaMessage} (injected by {EnvironmentVariable} at stage {stage.ToString().ToLowerInvariant()})");
    }
}
