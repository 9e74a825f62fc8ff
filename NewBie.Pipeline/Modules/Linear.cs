using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Modules;

/// <summary>
/// y = x·Wᵀ + b with parameters allocated uninitialised on their final device and dtype.
/// TorchSharp's nn.Linear always builds and Kaiming-initialises on the CPU before moving, which for a 3.5 B
/// model means gigabytes of throw-away host work; every weight here is loaded or explicitly initialised anyway.
/// </summary>
internal sealed class Linear : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    public Linear(long inFeatures, long outFeatures, bool hasBias, Device device, ScalarType dtype) : base(nameof(Linear))
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Linear needs positive sizes, got {inFeatures} → {outFeatures}");
        weight = nn.Parameter(torch.empty([outFeatures, inFeatures], dtype: dtype, device: device), requires_grad: false);
        if (hasBias) bias = nn.Parameter(torch.empty([outFeatures], dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);
}
