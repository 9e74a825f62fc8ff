using System.Diagnostics.CodeAnalysis;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Sampling;

/// <summary>
/// The only way NewBie draws seeded random numbers (starting noise, random weights, test inputs). Every draw comes
/// from a generator on the CPU in float32 and is then moved to the target device and cast to the target dtype, so a
/// seed gives the same numbers on the CPU and on every GPU.
/// </summary>
/// <remarks>
/// Why: TorchSharp 0.107's <c>new Generator(seed, device)</c> always creates a CPU generator (its native code has no
/// CUDA RNG), and libtorch refuses a CPU generator for a CUDA tensor, so drawing on the device throws before the first
/// step; and a CUDA generator would give other numbers than the CPU one anyway. The <c>Generator</c> type and the
/// global seeding functions are banned everywhere else (BannedSymbols.txt at the repository root).
/// </remarks>
[SuppressMessage("ApiDesign", "RS0030", Justification = "The one class that may create a generator (on the CPU) and draw from it.")]
public sealed class SeededRandom : IDisposable
{
    private readonly Generator _generator;

    /// <summary>A stream of draws for this seed; successive draws continue the stream.</summary>
    public SeededRandom(long seed) => _generator = new Generator(unchecked((ulong)seed), CPU);

    /// <summary>Standard normal values of <paramref name="shape"/>: drawn on the CPU in float32, then moved and cast.</summary>
    public Tensor Normal(ReadOnlySpan<long> shape, Device? device = null, ScalarType dtype = ScalarType.Float32)
        => MoveAndCast(torch.randn(shape.ToArray(), dtype: ScalarType.Float32, device: CPU, generator: _generator), device, dtype);

    /// <summary>Uniform values in [0, 1) of <paramref name="shape"/>: drawn on the CPU in float32, then moved and cast.</summary>
    public Tensor Uniform(ReadOnlySpan<long> shape, Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        MoveAndCast(torch.rand(shape.ToArray(), dtype: ScalarType.Float32, device: CPU, generator: _generator), device, dtype);

    private static Tensor MoveAndCast(Tensor cpu, Device? device, ScalarType dtype)
    {
        if ((device is null || device.type == DeviceType.CPU) && dtype == ScalarType.Float32) return cpu;
        using (cpu) return cpu.to(dtype, device ?? CPU);
    }

    /// <summary>One draw from a fresh stream for <paramref name="seed"/>.</summary>
    public static Tensor Normal(long seed, ReadOnlySpan<long> shape, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        using var random = new SeededRandom(seed);
        return random.Normal(shape, device, dtype);
    }

    /// <summary>
    /// Fills every parameter and persistent buffer of <paramref name="module"/> with random values, in ordinal order of
    /// their state_dict names: for each one a standard normal tensor is drawn on the CPU in float32, passed to
    /// <paramref name="scale"/> with the name and tensor (which returns the value, e.g. noise / sqrt(fan_in)) and copied
    /// into the live tensor, converting to its device and dtype. Used by every network's CreateRandom (the built-in tiny
    /// model, benchmarks, tests); only one tensor at a time lives on the CPU, so a 3.5 B model fits on a GPU this way.
    /// </summary>
    public static void Initialise(nn.Module module, long seed, Func<string, Tensor, Tensor, Tensor> scale)
    {
        using var random = new SeededRandom(seed);
        using var _ = torch.no_grad();
        foreach (var (name, tensor) in module.state_dict().OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            using var scope = torch.NewDisposeScope();
            var noise = random.Normal(tensor.shape);
            tensor.copy_(scale(name, tensor, noise));
        }
    }

    public void Dispose() => _generator.Dispose();
}
