using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Modules;

/// <summary>
/// Multi-axis rotary embedding on interleaved pairs, as NextDiT's RopeEmbedder: each axis a has a table of
/// angles pos·θ^(−2k/d_a) computed in float64 and rounded to float32 (upstream builds them in float64 and
/// then calls .float() before torch.polar), and a token's rotation is the concatenation of its axes' rows.
/// Head dims (2j, 2j+1) form pair j; rotation is applied in float32 and cast back.
/// </summary>
internal sealed class Rope : IDisposable
{
    private readonly Tensor[] _cos;
    private readonly Tensor[] _sin;

    public IReadOnlyList<int> AxesDims { get; }
    public IReadOnlyList<int> AxesLens { get; }

    public Rope(IReadOnlyList<int> axesDims, IReadOnlyList<int> axesLens, double theta, Device device)
    {
        if (axesDims.Count != axesLens.Count)
            throw new ArgumentException($"RoPE has {axesDims.Count} axis dims but {axesLens.Count} axis lengths");
        AxesDims = axesDims;
        AxesLens = axesLens;
        _cos = new Tensor[axesDims.Count];
        _sin = new Tensor[axesDims.Count];
        for (var a = 0; a < axesDims.Count; a++)
        {
            using var step = torch.NewDisposeScope();
            var d = axesDims[a];
            var freqs = Enumerable.Range(0, d / 2).Select(k => 1.0 / Math.Pow(theta, 2.0 * k / d)).ToArray();
            var angles = torch.outer(torch.arange(axesLens[a], dtype: float64), torch.tensor(freqs, dtype: float64)).to(float32);
            // The tables live as long as this object, outside any caller's dispose scope.
            _cos[a] = angles.cos().to(device).DetachFromDisposeScope();
            _sin[a] = angles.sin().to(device).DetachFromDisposeScope();
        }
    }

    /// <summary>(cos, sin) for position ids [B, S, axes] (int64): each [B, S, Σd_a/2] float32.</summary>
    public (Tensor Cos, Tensor Sin) Lookup(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        long b = ids.shape[0], s = ids.shape[1];
        var cos = new List<Tensor>();
        var sin = new List<Tensor>();
        for (var a = 0; a < _cos.Length; a++)
        {
            var index = ids.select(-1, a).flatten().to(_cos[a].device);
            // Advanced indexing rather than index_select: the same gather, and it also runs on the META device.
            cos.Add(_cos[a][TensorIndex.Tensor(index)].view(b, s, -1));
            sin.Add(_sin[a][TensorIndex.Tensor(index)].view(b, s, -1));
        }
        return (torch.cat(cos, -1).MoveToOuterDisposeScope(), torch.cat(sin, -1).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The rotations as one complex table for <see cref="Apply"/>: cos + i·sin [B, S, 1, D/2] (complex64), built once per
    /// layout so that each attention call rotates q and k with a single complex multiply.
    /// </summary>
    public static Tensor Rotations(Tensor cos, Tensor sin) => torch.complex(cos, sin).unsqueeze(2);

    /// <summary>
    /// Rotates x [B, S, H, D] by <paramref name="rotations"/> [B or 1, S, 1, D/2] (<see cref="Rotations"/>): pairs
    /// (x_2j, x_2j+1) as complex numbers times e^{i·angle_j}, in float32 (upstream's apply_rotary_emb), cast back.
    /// Three kernels (cast, complex multiply, cast) instead of eight for the real form.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor rotations)
    {
        using var scope = torch.NewDisposeScope();
        var shape = x.shape;
        var pairs = torch.view_as_complex(x.to(float32).reshape(shape[0], shape[1], shape[2], shape[3] / 2, 2));
        var rotated = torch.view_as_real(pairs * rotations).flatten(3);
        return rotated.to(x.dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in _cos.Concat(_sin)) t?.Dispose();
    }
}
