using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Memory;

/// <summary>Bytes of weights of each network in a given dtype.</summary>
public sealed record WeightBytes(long Gemma, long Jina, long NextDiT, long Vae)
{
    public long Encoders => Gemma + Jina;
    public long Total => Gemma + Jina + NextDiT + Vae;
}

/// <summary>
/// The one memory model of the server: device bytes a generation needs under a plan, from the weights (parameter
/// counts of the configured architecture × dtype size) plus activation estimates per megapixel. Activation figures
/// are estimates for bf16 with flash/memory-efficient SDPA, not measurements on a GPU (BENCHMARKS.md has the command
/// that would measure them); fp32 doubles them. Images of a count are made one at a time and their activations are
/// freed in between, so the count does not multiply device memory.
/// </summary>
public sealed record MemoryEstimate(WeightBytes Weights, int ElementSize)
{
    private const long MiB = 1L << 20;

    /// <summary>DiT forward with CFG (conditional and unconditional), bf16: hidden states, MLP and attention outputs.</summary>
    public const long DiTActivationBytesPerMegapixelBf16 = 1024 * MiB;
    /// <summary>Untiled FLUX VAE decode, bf16: full-resolution 128-channel feature maps plus fp32 group-norm copies.</summary>
    public const long VaeActivationBytesPerMegapixelBf16 = 2560 * MiB;
    /// <summary>Text encoding of one prompt (≤ 512 Gemma tokens), bf16.</summary>
    public const long EncodeActivationBytesBf16 = 256 * MiB;
    /// <summary>CUDA context, libtorch kernels and caching-allocator slack, not visible as free memory once running.</summary>
    public const long RuntimeOverheadBytes = 1024 * MiB;
    /// <summary>The resolution the automatic plan choice must fit (model-spec §5.3 default).</summary>
    public const int ReferenceSide = 1024;

    private static readonly ConcurrentDictionary<(PipelineConfig, ScalarType), WeightBytes> Counted = new();

    /// <summary>The estimate for a model config in a dtype (bf16 on CUDA, fp32 on CPU).</summary>
    public static MemoryEstimate For(PipelineConfig config, ScalarType dtype) =>
        new(Counted.GetOrAdd((config, dtype), key => CountWeights(key.Item1, key.Item2)), ElementSizeOf(dtype));

    /// <summary>
    /// Builds every network on the meta device (shapes only, no storage) and sums its parameters and buffers, so the
    /// figures follow the architecture code instead of hand-kept parameter counts.
    /// </summary>
    private static WeightBytes CountWeights(PipelineConfig config, ScalarType dtype)
    {
        var meta = new Device(DeviceType.META);
        using var gemma = new GemmaTextEncoder(config.Gemma, meta, dtype);
        using var jina = new JinaTextEncoder(config.Jina, meta, dtype);
        using var dit = new NextDiT(config.NextDiT, meta, dtype);
        using var vae = new FluxVaeDecoder(config.Vae, meta, dtype);
        return new WeightBytes(Bytes(gemma), Bytes(jina), Bytes(dit), Bytes(vae));
    }

    private static long Bytes(nn.Module module) =>
        module.parameters().Sum(p => p.numel() * p.ElementSize) + module.buffers().Sum(b => b.numel() * b.ElementSize);

    private static int ElementSizeOf(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new ArgumentException($"no memory estimate for dtype {dtype}"),
    };

    private long Scaled(long bf16Bytes) => bf16Bytes * ElementSize / 2;

    private static double Megapixels(int width, int height) => (double)width * height / 1e6;

    /// <summary>Peak activations of one image's denoising and decode (whichever is larger; they do not overlap).</summary>
    public long ImageActivationBytes(int width, int height, bool tiledDecode)
    {
        var mp = Megapixels(width, height);
        var tile = VaeTiling.Default.TileLatentSize * 8 + 2;
        var vaeMp = tiledDecode ? Math.Min(mp, Megapixels(tile, tile)) : mp;
        var dit = (long)(mp * Scaled(DiTActivationBytesPerMegapixelBf16));
        var vae = (long)(vaeMp * Scaled(VaeActivationBytesPerMegapixelBf16));
        return Math.Max(dit, vae);
    }

    /// <summary>Weights that stay on the device under a plan (the DiT and the VAE always; the encoders only when all resident).</summary>
    public long ResidentBytes(MemoryPlan plan) =>
        Weights.NextDiT + Weights.Vae + (plan == MemoryPlan.AllResident ? Weights.Encoders : 0);

    /// <summary>
    /// Device bytes at the peak of one job under a plan, runtime overhead included: the resident weights plus the larger
    /// of the encode phase (an encoder brought in on demand, the biggest one) and the per-image phase.
    /// <paramref name="count"/> is accepted for the job's shape but does not add memory: images are made one at a time.
    /// </summary>
    public long PeakBytes(MemoryPlan plan, int width, int height, int count = 1, bool tiledDecode = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var encode = plan switch
        {
            MemoryPlan.AllResident => Scaled(EncodeActivationBytesBf16),
            MemoryPlan.EncodersOnDemand => Math.Max(Weights.Gemma, Weights.Jina) + Scaled(EncodeActivationBytesBf16),
            _ => 0,
        };
        return RuntimeOverheadBytes + ResidentBytes(plan) + Math.Max(encode, ImageActivationBytes(width, height, tiledDecode));
    }

    /// <summary>
    /// The automatic choice: the most resident plan whose peak at the reference resolution fits in
    /// <paramref name="freeBytes"/>; encoders on CPU when none does (the DiT may still not fit: admission says so per job).
    /// </summary>
    public MemoryPlan Choose(long freeBytes) =>
        MemoryPlans.ByPreference.FirstOrDefault(p => PeakBytes(p, ReferenceSide, ReferenceSide) <= freeBytes, MemoryPlan.EncodersOnCpu);

    /// <summary>The least free memory each plan needs to be chosen automatically.</summary>
    public long Threshold(MemoryPlan plan) => PeakBytes(plan, ReferenceSide, ReferenceSide);
}
