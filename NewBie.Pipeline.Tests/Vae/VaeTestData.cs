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

    /// <summary>The fixture README's tolerance, |actual − expected| ≤ 1e-4 + 1e-4·|expected|, through <see cref="Parity.Close"/>.</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double atol = 1e-4, double rtol = 1e-4) =>
        Parity.Close(expected, actual, atol, rtol, what);

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
