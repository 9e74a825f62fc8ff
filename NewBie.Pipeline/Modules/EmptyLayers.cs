using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace NewBie.Pipeline.Modules;

/// <summary>
/// A Linear layer whose parameters are allocated uninitialised, directly on the target device and dtype.
/// TorchSharp's nn.Linear builds and randomly initialises every layer on the CPU in float32 before moving it,
/// which for the real text encoders means minutes of CPU work and a second copy of each layer in host memory,
/// all overwritten by the checkpoint a moment later. Contents are undefined until loaded or filled.
/// </summary>
internal sealed class EmptyLinear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public EmptyLinear(long inFeatures, long outFeatures, bool hasBias, Device device, ScalarType dtype) : base(nameof(EmptyLinear))
    {
        weight = new Parameter(torch.empty(outFeatures, inFeatures, dtype: dtype, device: device), requires_grad: false);
        if (hasBias) bias = new Parameter(torch.empty(outFeatures, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => F.linear(x, weight, bias);
}

/// <summary>An embedding table allocated uninitialised on the target device and dtype (see <see cref="EmptyLinear"/>).</summary>
internal sealed class EmptyEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public EmptyEmbedding(long count, long dim, Device device, ScalarType dtype) : base(nameof(EmptyEmbedding))
    {
        weight = new Parameter(torch.empty(count, dim, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public Tensor Weight => weight;

    /// <summary>ids int64 [...] → [..., dim].</summary>
    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var rows = weight.index_select(0, ids.reshape(-1));
        return rows.reshape([.. ids.shape, weight.shape[1]]).MoveToOuterDisposeScope();
    }
}
