using NewBie.Pipeline.Weights;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Vae;

/// <summary>Reads fixture tensors and compares them with the README's tolerance.</summary>
internal static class VaeTestData
{
    public static Tensor Read(string file, string name)
    {
        using var st = SafetensorsFile.Open(file);
        return st.Read(name);
    }

    /// <summary>Asserts |actual − expected| ≤ atol + rtol·|expected| everywhere, reporting the worst element.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double atol = 1e-4, double rtol = 1e-4)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var e = expected.to(ScalarType.Float64);
        var a = actual.to(ScalarType.Float64).cpu();
        var excess = (a - e).abs() - (e.abs() * rtol + atol);
        var worst = excess.max().item<double>();
        Assert.True(worst <= 0,
            $"{what}: max |diff| {(a - e).abs().max().item<double>():G4} exceeds the tolerance by {worst:G4} (atol {atol}, rtol {rtol})");
    }

    /// <summary>Same shape and bit-identical values.</summary>
    public static bool Same(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        return a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
    }

    /// <summary>Max and mean absolute difference.</summary>
    public static (double Max, double Mean) Diff(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var d = (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs();
        return (d.max().item<double>(), d.mean().item<double>());
    }
}
