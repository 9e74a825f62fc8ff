using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests;

/// <summary>
/// Where and in which dtype the parity tests run the networks, and how their results are compared: the one place
/// that decides it. The default is the CPU in float32, held to each fixture README's tolerance.
/// <c>NEWBIE_PARITY_DEVICE</c> (e.g. <c>cuda</c>) and <c>NEWBIE_PARITY_DTYPE</c> (<c>float32</c> | <c>bfloat16</c>)
/// run the same tests elsewhere: models are built on <see cref="Device"/> in <see cref="DType"/>, inputs go through
/// <see cref="Input"/>, and every comparison through <see cref="Close"/>.
/// </summary>
public static class Parity
{
    public static Device Device { get; } = torch.device(Environment.GetEnvironmentVariable("NEWBIE_PARITY_DEVICE") is { Length: > 0 } d ? d : "cpu");

    public static ScalarType DType { get; } = Environment.GetEnvironmentVariable("NEWBIE_PARITY_DTYPE") switch
    {
        null or "" or "float32" => ScalarType.Float32,
        "bfloat16" => ScalarType.BFloat16,
        var other => throw new InvalidOperationException($"NEWBIE_PARITY_DTYPE '{other}': use float32 or bfloat16"),
    };

    /// <summary>True when the fixture READMEs' float32 tolerances apply.</summary>
    public static bool FullPrecision => DType == ScalarType.Float32;

    /// <summary>A fixture input on the parity device; floating tensors cast to the parity dtype.</summary>
    public static Tensor Input(Tensor t) => t.is_floating_point() ? t.to(DType, Device) : t.to(Device);

    /// <summary>
    /// |actual − expected| ≤ atol + rtol·|expected| everywhere (the fixture's float32 tolerance). In reduced precision
    /// that bound cannot hold (bf16 keeps 8 mantissa bits), so there the relative L2 error must stay below
    /// <see cref="ReducedPrecisionRelativeError"/> instead: a check of the dtype plumbing, not of parity.
    /// </summary>
    public static void Close(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        if (FullPrecision)
        {
            TensorAssert.Close(expected, actual, atol, rtol, what);
            return;
        }
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
        using var scope = torch.NewDisposeScope();
        var e = expected.to(float64).cpu();
        var a = actual.to(float64).cpu();
        var relative = ((a - e).norm() / e.norm().clamp_min(1e-12)).item<double>();
        Assert.True(relative < ReducedPrecisionRelativeError, $"{what}: relative L2 error {relative:E3} in {DType}");
    }

    /// <summary>bf16 bound used by the CPU bf16 tests too (5 %).</summary>
    public const double ReducedPrecisionRelativeError = 0.05;
}
