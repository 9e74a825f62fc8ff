using NewBie.Pipeline.Memory;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Memory;

/// <summary>The memory model behind plan choice and admission, on the full-size architecture (counted on the meta device).</summary>
public sealed class MemoryEstimateTests
{
    private const long GiB = 1L << 30;
    private static readonly MemoryEstimate Full = MemoryEstimate.For(PipelineConfig.NewBieExp01, ScalarType.BFloat16);

    [Fact]
    public void Weights_of_the_full_model_match_the_sizes_of_model_spec_7()
    {
        // model-spec §7 (bf16): DiT 3.49 B → 6.97 GB; Gemma-3 text part without the last layer ≈ 7.6–7.8 GB;
        // Jina text ≈ 1.1 GB; the VAE decoder is the smaller half of a 0.17 GB VAE.
        Assert.InRange(Full.Weights.NextDiT, 6.6e9, 7.3e9);
        Assert.InRange(Full.Weights.Gemma, 7.0e9, 8.0e9);
        Assert.InRange(Full.Weights.Jina, 0.9e9, 1.3e9);
        Assert.InRange(Full.Weights.Vae, 0.05e9, 0.17e9);
        Assert.Equal(Full.Weights.Gemma + Full.Weights.Jina + Full.Weights.NextDiT + Full.Weights.Vae, Full.Weights.Total);
    }

    [Fact]
    public void Fp32_doubles_the_weights()
    {
        var fp32 = MemoryEstimate.For(PipelineConfig.NewBieExp01, ScalarType.Float32);
        Assert.Equal(2 * Full.Weights.Total, fp32.Weights.Total);
        Assert.Equal(2 * Full.ImageActivationBytes(1024, 1024, false), fp32.ImageActivationBytes(1024, 1024, false));
    }

    [Fact]
    public void Plans_need_less_device_memory_in_order_and_bigger_images_need_more()
    {
        var peaks = MemoryPlans.ByPreference.Select(p => Full.PeakBytes(p, 1024, 1024)).ToList();
        Assert.True(peaks[0] > peaks[1] && peaks[1] > peaks[2], string.Join(", ", peaks));
        Assert.True(Full.PeakBytes(MemoryPlan.EncodersOnCpu, 2048, 2048) > Full.PeakBytes(MemoryPlan.EncodersOnCpu, 1536, 1536));
        Assert.True(Full.PeakBytes(MemoryPlan.EncodersOnCpu, 2048, 2048, tiledDecode: true) < Full.PeakBytes(MemoryPlan.EncodersOnCpu, 2048, 2048));
        // Images of a count are made one at a time.
        Assert.Equal(Full.PeakBytes(MemoryPlan.AllResident, 1024, 1024, count: 4), Full.PeakBytes(MemoryPlan.AllResident, 1024, 1024));
    }

    [Theory]
    [InlineData(80, MemoryPlan.AllResident)]
    [InlineData(24, MemoryPlan.AllResident)]
    [InlineData(16, MemoryPlan.EncodersOnDemand)]
    [InlineData(12, MemoryPlan.EncodersOnCpu)]
    [InlineData(8, MemoryPlan.EncodersOnCpu)]
    public void Plan_choice_for_simulated_free_vram(int freeGiB, MemoryPlan expected) =>
        Assert.Equal(expected, Full.Choose(freeGiB * GiB));

    [Theory]
    [InlineData(MemoryPlan.AllResident, MemoryPlan.EncodersOnDemand)]
    [InlineData(MemoryPlan.EncodersOnDemand, MemoryPlan.EncodersOnCpu)]
    public void A_plan_is_chosen_exactly_from_its_threshold(MemoryPlan plan, MemoryPlan below)
    {
        Assert.Equal(plan, Full.Choose(Full.Threshold(plan)));
        Assert.Equal(below, Full.Choose(Full.Threshold(plan) - 1));
    }

    [Theory]
    [InlineData("all-resident", MemoryPlan.AllResident)]
    [InlineData("encoders-on-demand", MemoryPlan.EncodersOnDemand)]
    [InlineData("encoders-on-cpu", MemoryPlan.EncodersOnCpu)]
    public void Plan_names_round_trip(string name, MemoryPlan plan)
    {
        Assert.Equal(plan, MemoryPlans.Parse(name));
        Assert.Equal(name, plan.Name());
    }

    [Theory]
    [InlineData("auto")]
    [InlineData("AllResident")]
    [InlineData(null)]
    public void Auto_and_unknown_names_are_no_plan(string? name) => Assert.Null(MemoryPlans.Parse(name));
}
