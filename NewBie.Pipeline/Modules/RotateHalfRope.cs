using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Modules;

/// <summary>
/// Rotary position embedding in the non-interleaved ("rotate-half") form used by Gemma-3 and jina-embeddings-v3:
/// feature j is paired with feature j + dim/2. Tables and rotation run in float32 whatever the model dtype.
/// </summary>
internal static class RotateHalfRope
{
    /// <summary>
    /// cos and sin tables [length, dim] (float32) for positions 0 … length-1.
    /// <paramref name="positionScale"/> is the linear RoPE scaling factor (positions divided by it).
    /// </summary>
    public static (Tensor Cos, Tensor Sin) Tables(long length, int dim, double theta, double positionScale, Device device)
    {
        using var scope = torch.NewDisposeScope();
        // Angles in float64: at long positions float32 angles drift by more than the model's own bf16 noise.
        var invFreq = torch.exp(torch.arange(0, dim, 2, dtype: float64) * (-Math.Log(theta) / dim)) / positionScale;
        var freqs = torch.outer(torch.arange(length, dtype: float64), invFreq);
        var angles = torch.cat([freqs, freqs], dim: -1);
        var cos = angles.cos().to(float32, device);
        var sin = angles.sin().to(float32, device);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>Rotates x [..., L, dim] by the tables, multiplies by <paramref name="scale"/>, and returns x's dtype.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin, double scale = 1.0)
    {
        using var scope = torch.NewDisposeScope();
        var xf = x.to(float32);
        var half = xf.shape[^1] / 2;
        var rotated = torch.cat([-xf[TensorIndex.Ellipsis, TensorIndex.Slice(half)], xf[TensorIndex.Ellipsis, TensorIndex.Slice(0, half)]], dim: -1);
        var y = xf * cos + rotated * sin;
        if (scale != 1.0) y = y * scale;
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}
