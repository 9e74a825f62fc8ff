using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests;

/// <summary>Element-wise tolerance checks and fixture tensor reading shared by the parity tests.</summary>
public static class TensorAssert
{
    /// <summary>|actual − expected| ≤ atol + rtol·|expected| everywhere; the message names the worst element.</summary>
    public static void Close(Tensor expected, Tensor actual, double atol, double rtol, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(", ", actual.shape)}], expected [{string.Join(", ", expected.shape)}]");
        using var scope = torch.NewDisposeScope();
        var e = expected.to(float64);
        var a = actual.to(float64).cpu();
        var excess = (a - e).abs() - (e.abs() * rtol + atol);
        var worst = excess.max().item<double>();
        var maxDiff = (a - e).abs().max().item<double>();
        Assert.True(worst <= 0, $"{what}: max |diff| {maxDiff:E3} exceeds {atol:E1} + {rtol:E1}·|expected| (by {worst:E3})");
    }

    /// <summary>Every tensor of a safetensors file, copied into memory.</summary>
    public static Dictionary<string, Tensor> ReadAll(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Tensors.Keys.ToDictionary(k => k, k => file.Read(k), StringComparer.Ordinal);
    }
}
