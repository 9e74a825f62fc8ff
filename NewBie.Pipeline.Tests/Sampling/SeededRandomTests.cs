using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Sampling;

/// <summary>Seeded draws: the same numbers for a seed on every device and dtype, because they are drawn on the CPU in float32.</summary>
public sealed class SeededRandomTests
{
    [Fact]
    public void A_seed_gives_the_same_stream_and_another_seed_another()
    {
        using var a = new SeededRandom(42);
        using var b = new SeededRandom(42);
        using var first = a.Normal([3, 5]);
        using var again = b.Normal([3, 5]);
        using var next = a.Normal([3, 5]);
        using var other = SeededRandom.Normal(43, [3, 5]);
        Assert.True(first.equal(again).all().item<bool>());
        Assert.False(first.equal(next).all().item<bool>());
        Assert.False(first.equal(other).all().item<bool>());
        Assert.Equal(ScalarType.Float32, first.dtype);
        Assert.Equal(DeviceType.CPU, first.device.type);
    }

    [Fact]
    public void Noise_in_another_dtype_is_the_float32_draw_cast_not_a_new_draw()
    {
        using var f32 = Noise.FromSeed(7, 32, 48, 16, CPU, float32);
        using var bf16 = Noise.FromSeed(7, 32, 48, 16, CPU, bfloat16);
        using var cast = f32.to(bfloat16);
        Assert.Equal([1, 16, 6, 4], f32.shape);
        Assert.Equal(ScalarType.BFloat16, bf16.dtype);
        Assert.True(cast.equal(bf16).all().item<bool>());
    }

    /// <summary>
    /// A device other than the CPU gets the CPU draw moved there. The meta device stands in for CUDA here: a generator
    /// used on a non-CPU device must fail (libtorch checks the generator's device), and the helper never does that.
    /// </summary>
    [Fact]
    public void Noise_for_another_device_is_the_cpu_draw_moved_there()
    {
        using var meta = Noise.FromSeed(7, 32, 32, 16, META, bfloat16);
        Assert.Equal(DeviceType.META, meta.device.type);
        Assert.Equal(ScalarType.BFloat16, meta.dtype);
        Assert.Equal([1, 16, 4, 4], meta.shape);
    }

    [Fact]
    public void Random_weights_are_the_same_in_every_dtype_and_differ_by_seed()
    {
        var small = NextDiTConfig.Tiny with { Dim = 32, AxesDims = [2, 2, 4], CapFeatDim = 12, ClipTextDim = 8 };
        using var f32 = Pipeline.NextDiT.CreateRandom(small, 3, CPU, float32);
        using var bf16 = Pipeline.NextDiT.CreateRandom(small, 3, CPU, bfloat16);
        using var other = Pipeline.NextDiT.CreateRandom(small, 4, CPU, float32);
        var a = f32.state_dict();
        var b = bf16.state_dict();
        var c = other.state_dict();
        foreach (var (name, value) in a)
        {
            using var cast = value.to(bfloat16);
            Assert.True(cast.equal(b[name]).all().item<bool>(), name);
            if (value.numel() > 1) Assert.False(value.equal(c[name]).all().item<bool>(), name);
        }
    }

    [Fact]
    public void Initialise_draws_in_name_order_and_passes_each_tensor_to_the_scale()
    {
        using var module = nn.Sequential(("b", nn.Linear(2, 3)), ("a", nn.Linear(3, 1)));
        var seen = new List<string>();
        SeededRandom.Initialise(module, 5, (name, tensor, noise) =>
        {
            seen.Add(name);
            Assert.Equal(tensor.shape, noise.shape);
            return noise * 2;
        });
        Assert.Equal(["a.bias", "a.weight", "b.bias", "b.weight"], seen);
        using var random = new SeededRandom(5);
        using var aBias = random.Normal([1]);
        using var aWeight = random.Normal([1, 3]);
        var state = module.state_dict();
        Assert.True((aBias * 2).equal(state["a.bias"]).all().item<bool>());
        Assert.True((aWeight * 2).equal(state["a.weight"]).all().item<bool>());
    }
}
