using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Sampling;

public sealed class SamplerBehaviourTests
{
    /// <summary>Records reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class Recorder : IProgress<StepProgress>
    {
        public List<StepProgress> Reports { get; } = [];
        public Action<StepProgress>? Then { get; init; }
        public void Report(StepProgress value)
        {
            Reports.Add(value);
            Then?.Invoke(value);
        }
    }

    private static Tensor Latent() => SeededRandom.Normal(5, [1, 16, 4, 6]);

    [Fact]
    public void Same_seed_gives_identical_noise()
    {
        var a = Noise.FromSeed(42, 64, 48, 16, CPU, float32);
        var b = Noise.FromSeed(42, 64, 48, 16, CPU, float32);
        Assert.Equal([1L, 16, 6, 8], a.shape);
        Assert.True(a.allclose(b, rtol: 0, atol: 0));
    }

    [Fact]
    public void Different_seeds_give_different_noise()
    {
        var a = Noise.FromSeed(42, 64, 64, 16, CPU, float32);
        var b = Noise.FromSeed(43, 64, 64, 16, CPU, float32);
        Assert.False(a.allclose(b));
    }

    [Fact]
    public void Noise_is_drawn_in_float32_then_cast_to_the_model_dtype()
    {
        var full = Noise.FromSeed(7, 32, 32, 16, CPU, float32);
        var half = Noise.FromSeed(7, 32, 32, 16, CPU, bfloat16);
        Assert.Equal(bfloat16, half.dtype);
        Assert.True(full.to(bfloat16).allclose(half, rtol: 0, atol: 0));
    }

    [Fact]
    public void Noise_refuses_sizes_that_are_not_multiples_of_16()
    {
        Assert.Throws<ArgumentException>(() => Noise.FromSeed(1, 1000, 1024, 16, CPU, float32));
    }

    [Theory]
    [InlineData(SamplerKind.Euler, 1)]
    [InlineData(SamplerKind.Midpoint, 2)]
    public void Progress_is_reported_after_every_step(SamplerKind kind, int evaluationsPerStep)
    {
        var calls = 0;
        var recorder = new Recorder();
        Samplers.Sample(kind, Latent(), 5, 6.0, (x, t) => { calls++; return torch.zeros_like(x); },
            new DenoiseReporting(recorder, Image: 1, Images: 3));
        Assert.Equal(5 * evaluationsPerStep, calls);
        Assert.Equal(Enumerable.Range(1, 5).Select(s => new StepProgress(GenerationStage.Denoising, s, 5, 1, 3)), recorder.Reports);
    }

    [Theory]
    [InlineData(SamplerKind.Euler, 1)]
    [InlineData(SamplerKind.Midpoint, 2)]
    public void Cancel_stops_before_the_next_step(SamplerKind kind, int evaluationsPerStep)
    {
        using var cts = new CancellationTokenSource();
        var calls = 0;
        var recorder = new Recorder { Then = p => { if (p.Step == 2) cts.Cancel(); } };
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Samplers.Sample(kind, Latent(), 6, 6.0, (x, t) => { calls++; return torch.zeros_like(x); }, new DenoiseReporting(recorder), cts.Token));
        Assert.Equal(2 * evaluationsPerStep, calls);
        Assert.Equal(2, recorder.Reports.Count);
    }

    [Fact]
    public void Cancel_during_a_step_lets_that_step_finish()
    {
        using var cts = new CancellationTokenSource();
        var calls = 0;
        var recorder = new Recorder();
        // Cancelled inside the first evaluation of midpoint step 1: its second evaluation still runs.
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Samplers.Sample(SamplerKind.Midpoint, Latent(), 6, 6.0, (x, t) => { if (++calls == 1) cts.Cancel(); return torch.zeros_like(x); },
                new DenoiseReporting(recorder), cts.Token));
        Assert.Equal(2, calls);
        Assert.Single(recorder.Reports);
    }

    [Fact]
    public void Already_cancelled_run_evaluates_nothing()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var calls = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Samplers.Sample(SamplerKind.Euler, Latent(), 3, 6.0, (x, t) => { calls++; return x; }, cancellationToken: cts.Token));
        Assert.Equal(0, calls);
    }

    [Theory]
    [InlineData(SamplerKind.Euler)]
    [InlineData(SamplerKind.Midpoint)]
    public void Constant_velocity_moves_the_state_by_exactly_that_velocity(SamplerKind kind)
    {
        // Both grids span t from 0 to 1, so a constant v integrates to noise + v.
        var noise = Latent();
        var v = torch.full([1, 16, 4, 6], 0.75f);
        var result = Samplers.Sample(kind, noise, 7, 6.0, (x, t) => v);
        TensorAssert.Close(noise + v, result, 1e-6, 0, "noise + v");
    }

    [Fact]
    public void Loop_state_is_float32_even_for_bf16_noise()
    {
        List<ScalarType> seen = [];
        var result = Samplers.Sample(SamplerKind.Euler, Latent().to(bfloat16), 2, 6.0, (x, t) => { seen.Add(x.dtype); return torch.zeros_like(x); });
        Assert.Equal([float32, float32], seen);
        Assert.Equal(float32, result.dtype);
    }

    [Fact]
    public void Sigma_grid_runs_from_noise_to_clean_and_mirrors_the_official_grid()
    {
        var sigmas = Schedules.SigmaGrid(10, 6.0);
        var times = Schedules.OfficialTimeGrid(11, 6.0);
        Assert.Equal(1f, sigmas[0]);
        Assert.Equal(0f, sigmas[^1]);
        Assert.Equal((0f, 1f), (times[0], times[^1]));
        for (var k = 0; k <= 10; k++) Assert.Equal(1 - sigmas[k], times[k], 1e-6);
        // shift 6 spends the early steps at high noise: the first step moves σ by only 1 − 6·0.9/5.5.
        Assert.Equal(1 - 6 * 0.9 / (1 + 5 * 0.9), 1 - sigmas[1], 1e-6);
    }

    private static readonly NextDiTConfig Small = NextDiTConfig.Tiny with { Dim = 32, AxesDims = [2, 2, 4], CapFeatDim = 12, ClipTextDim = 8 };

    private static (Pipeline.NextDiT Model, Conditioning Cond, Conditioning Uncond, Tensor X) Guided()
    {
        using var g = new SeededRandom(11);
        var model = Pipeline.NextDiT.CreateRandom(Small, 2, CPU, float32);
        var cond = new Conditioning(g.Normal([1, 5, 12]), torch.ones([1, 5], dtype: int64), g.Normal([1, 8]));
        var uncond = new Conditioning(g.Normal([1, 1, 12]), torch.ones([1, 1], dtype: int64), g.Normal([1, 8]));
        return (model, cond, uncond, g.Normal([1, 16, 4, 4]));
    }

    [Fact]
    public void Cfg_truncation_is_strict_and_runs_cond_only_from_the_threshold_on()
    {
        var (model, cond, uncond, x) = Guided();
        using var _ = model;
        var cfg = new CfgSettings(4.0, 0.5, 0);
        var vCond = Guidance.Run(model, x, 0.5f, cond);
        Assert.True(Guidance.GuidedVelocity(model, x, 0.5f, cond, uncond, cfg).allclose(vCond, rtol: 0, atol: 0));
        var below = Guidance.GuidedVelocity(model, x, 0.4999f, cond, uncond, cfg);
        var expected = Guidance.Run(model, x, 0.4999f, uncond) * -3 + Guidance.Run(model, x, 0.4999f, cond) * 4;
        TensorAssert.Close(expected, below, 1e-5, 1e-5, "v_u + 4·(v_c − v_u)");
    }

    [Fact]
    public void Renorm_clamps_the_guided_norm_to_renorm_times_the_cond_norm()
    {
        var (model, cond, uncond, x) = Guided();
        using var _ = model;
        var condNorm = Guidance.Run(model, x, 0.1f, cond).norm().item<float>();
        var plain = Guidance.GuidedVelocity(model, x, 0.1f, cond, uncond, new CfgSettings(4.0, 1.0, 0));
        Assert.True(plain.norm().item<float>() > condNorm, "test premise: guidance grows the norm");
        var clamped = Guidance.GuidedVelocity(model, x, 0.1f, cond, uncond, new CfgSettings(4.0, 1.0, 1.0));
        Assert.Equal(condNorm, clamped.norm().item<float>(), condNorm * 1e-5);
        TensorAssert.Close(plain / plain.norm(), clamped / clamped.norm(), 1e-6, 0, "direction kept");
        var loose = Guidance.GuidedVelocity(model, x, 0.1f, cond, uncond, new CfgSettings(4.0, 1.0, 100));
        Assert.True(loose.allclose(plain, rtol: 0, atol: 0), "a clamp that is not hit changes nothing");
    }
}
