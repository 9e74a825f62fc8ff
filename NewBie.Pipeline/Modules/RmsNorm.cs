using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Modules;

/// <summary>
/// RMSNorm as in NextDiT's models/components.py: normalise in float32, cast back to the input dtype, then
/// multiply by the plain weight (not 1 + w). The cast happens before the weight multiply, as upstream does,
/// so bf16 results round the same way.
/// </summary>
internal sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public RmsNorm(long dim, double eps, Device device, ScalarType dtype) : base(nameof(RmsNorm))
    {
        if (dim <= 0) throw new ArgumentException($"RmsNorm needs a positive dim, got {dim}");
        if (eps <= 0) throw new ArgumentException($"RmsNorm needs a positive eps, got {eps}");
        _eps = eps;
        weight = nn.Parameter(torch.ones([dim], dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var xf = x.to(float32);
        // In place where the tensor is this call's own temporary: fewer allocations per norm, same arithmetic.
        var scale = xf.square().mean([-1], keepdim: true).add_(_eps).rsqrt_();
        var normed = (xf * scale).to(x.dtype);
        return normed.mul_(weight).MoveToOuterDisposeScope();
    }
}
