using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.NextDiT;

/// <summary>
/// No host synchronisation inside the DiT forward or the step loop: caption lengths are host values read once when a
/// conditioning is made, and what a layout needs (RoPE rotations, position ids, masks) is built once per caption lengths
/// and size. (The META device cannot prove it by running the loop: libtorch 2.10 has no meta kernel for SDPA's math path.)
/// </summary>
public sealed class HostSyncTests
{
    private static readonly NextDiTConfig Small = NextDiTConfig.Tiny with { Dim = 32, AxesDims = [2, 2, 4], CapFeatDim = 12, ClipTextDim = 8 };

    private static (Conditioning Cond, Conditioning Uncond) Conditionings(Device device)
    {
        using var g = new SeededRandom(3);
        // The masks are host tensors: the lengths are read from them once, when the conditioning is made.
        return (new Conditioning(g.Normal([1, 5, Small.CapFeatDim], device), torch.ones([1, 5], dtype: int64), g.Normal([1, Small.ClipTextDim], device)),
            new Conditioning(g.Normal([1, 1, Small.CapFeatDim], device), torch.ones([1, 1], dtype: int64), g.Normal([1, Small.ClipTextDim], device)));
    }

    /// <summary>
    /// A counter proof: the forward reads device values on the host only in NextDiT.CaptionLengths (the mask overload and
    /// making a Conditioning), and builds host position ids and copies them to the device only per new layout. A guided
    /// loop with CFG truncation and renorm, over conditionings made before it, does neither after its first step.
    /// </summary>
    [Theory]
    [InlineData(SamplerKind.Euler)]
    [InlineData(SamplerKind.Midpoint)]
    public void Guided_step_loop_reads_nothing_on_the_host_and_builds_no_layout_after_its_first_step(SamplerKind sampler)
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 2, CPU, float32);
        var (cond, uncond) = Conditionings(CPU);
        using var noise = SeededRandom.Normal(1, [1, Small.InChannels, 6, 4]);
        var velocity = Guidance.For(model, cond, uncond, new CfgSettings(4.0, 0.5, 1.0));
        long readsBefore = 0;
        var buildsAfterFirst = -1;

        using var latent = Samplers.Sample(sampler, noise, 4, 6.0, velocity, new DenoiseReporting(OnStep: (step, _) =>
        {
            if (step != 0) return;
            readsBefore = Pipeline.NextDiT.HostReads;
            buildsAfterFirst = model.LayoutBuilds;
        }));

        Assert.Equal(readsBefore, Pipeline.NextDiT.HostReads);
        Assert.Equal(2, buildsAfterFirst);
        Assert.Equal(2, model.LayoutBuilds);
    }

    [Fact]
    public void The_mask_overload_reads_the_lengths_on_the_host_once_per_call()
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 2, CPU, float32);
        var before = Pipeline.NextDiT.HostReads;
        using var v = model.forward(torch.zeros([2, Small.InChannels, 6, 4]), torch.zeros([2]), torch.zeros([2, 7, Small.CapFeatDim]),
            torch.tensor(new long[,] { { 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 0, 0, 0, 0 } }), torch.zeros([2, Small.ClipTextDim]));
        Assert.True(Pipeline.NextDiT.HostReads > before);
        Assert.Throws<ArgumentException>(() => model.forward(torch.zeros([1, Small.InChannels, 6, 4]), torch.zeros([1]),
            torch.zeros([1, 3, Small.CapFeatDim]), torch.tensor(new long[,] { { 1, 0, 1 } }), torch.zeros([1, Small.ClipTextDim])));
    }

    [Fact]
    public void Layouts_are_built_once_per_caption_lengths_and_size()
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 2, CPU, float32);
        var (cond, uncond) = Conditionings(CPU);
        var velocity = Guidance.For(model, cond, uncond, new CfgSettings(4.0, 1.0, 1.0));

        Samplers.Sample(SamplerKind.Euler, SeededRandom.Normal(1, [1, Small.InChannels, 6, 4]), 4, 6.0, velocity).Dispose();
        Assert.Equal(2, model.LayoutBuilds);
        Samplers.Sample(SamplerKind.Midpoint, SeededRandom.Normal(2, [1, Small.InChannels, 6, 4]), 2, 6.0, velocity).Dispose();
        Assert.Equal(2, model.LayoutBuilds);
        Samplers.Sample(SamplerKind.Euler, SeededRandom.Normal(3, [1, Small.InChannels, 4, 4]), 2, 6.0, velocity).Dispose();
        Assert.Equal(4, model.LayoutBuilds);
    }
}
