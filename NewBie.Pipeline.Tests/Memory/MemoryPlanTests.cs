using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Imaging;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Tests.EndToEnd;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Memory;

/// <summary>
/// The three memory plans on the tiny model. A CPU has one device, so every plan must give the same image; what differs
/// is where each plan keeps and runs the text encoders, which the pipeline reports and these tests check.
/// </summary>
public sealed class MemoryPlanTests(TinyModelFixture tiny) : IClassFixture<TinyModelFixture>
{
    public static TheoryData<MemoryPlan> Plans => new(MemoryPlans.ByPreference);

    private static readonly GenerationRequest Request = new()
    {
        Prompt = "<character_1><n>tiny</n></character_1>",
        NegativePrompt = "blurry",
        Width = 32,
        Height = 32,
        Steps = 2,
        Seed = 9,
    };

    private NewBiePipeline Load(MemoryPlan plan) =>
        NewBiePipeline.Load(tiny.Folder, PipelineConfig.Tiny, torch.CPU, ScalarType.Float32, new PipelineOptions { MemoryPlan = plan });

    private static byte[] Png(NewBiePipeline pipeline)
    {
        var image = Assert.Single(pipeline.Generate(Request, null, CancellationToken.None).Images);
        return PngWriter.Encode(image, GenerationMetadata.For(Request, image, pipeline.Model.Id));
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public void Each_plan_keeps_and_runs_the_encoders_where_it_says(MemoryPlan plan)
    {
        using var pipeline = Load(plan);
        var seen = new List<(string Network, string Device)>();
        pipeline.EncoderRunning += (network, device) => seen.Add((network, device.ToString()));

        Assert.Equal(plan, pipeline.MemoryPlan);
        Assert.Equal(plan, pipeline.Model.MemoryPlan);
        var home = plan == MemoryPlan.AllResident ? pipeline.Device : torch.CPU;
        Assert.Equal(home.ToString(), pipeline.EncoderHome.ToString());
        var devices = pipeline.ParameterDevices();
        Assert.Equal(home.ToString(), Assert.Single(devices["gemma"]).ToString());
        Assert.Equal(home.ToString(), Assert.Single(devices["jina"]).ToString());
        Assert.Equal(pipeline.Device.ToString(), Assert.Single(devices["nextdit"]).ToString());
        Assert.Equal(pipeline.Device.ToString(), Assert.Single(devices["vae"]).ToString());

        pipeline.Generate(Request, null, CancellationToken.None);

        // Prompt and negative prompt, each through Gemma then Jina; on demand each run is bracketed by a move there and back.
        var runsOn = plan == MemoryPlan.EncodersOnCpu ? torch.CPU.ToString() : pipeline.Device.ToString();
        Assert.Equal(new[] { "gemma", "jina", "gemma", "jina" }, seen.Select(s => s.Network));
        Assert.All(seen, s => Assert.Equal(runsOn, s.Device));
        Assert.Equal(plan == MemoryPlan.EncodersOnDemand ? 8 : 0, pipeline.EncoderMoves);
        Assert.Equal(home.ToString(), Assert.Single(pipeline.ParameterDevices()["gemma"]).ToString());
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public void Each_plan_makes_the_same_image_as_all_resident(MemoryPlan plan)
    {
        using var reference = Load(MemoryPlan.AllResident);
        using var pipeline = Load(plan);
        Assert.Equal(Png(reference), Png(pipeline));
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public void Each_plan_serves_a_repeated_prompt_from_the_cache_without_running_or_moving_the_encoders(MemoryPlan plan)
    {
        using var pipeline = Load(plan);
        var first = Png(pipeline);
        var (runs, moves) = (pipeline.EncoderRuns, pipeline.EncoderMoves);
        var second = Png(pipeline);

        Assert.Equal(2, runs);
        Assert.Equal((runs, moves), (pipeline.EncoderRuns, pipeline.EncoderMoves));
        Assert.Equal((2L, 2L), (pipeline.PromptCacheHits, pipeline.PromptCacheMisses));
        Assert.Equal(first, second);
    }

    [Theory]
    [MemberData(nameof(Plans))]
    public void Random_weight_pipeline_for_memory_benchmarks_places_the_networks_by_plan_and_generates(MemoryPlan plan)
    {
        var scratch = Directory.CreateTempSubdirectory("newbie-random-").FullName;
        try
        {
            using var pipeline = NewBiePipeline.CreateRandom(PipelineConfig.Tiny, torch.CPU, ScalarType.Float32, new PipelineOptions { MemoryPlan = plan }, scratch);
            Assert.Equal(plan, pipeline.Model.MemoryPlan);
            Assert.Equal((plan == MemoryPlan.AllResident ? pipeline.Device : torch.CPU).ToString(), Assert.Single(pipeline.ParameterDevices()["gemma"]).ToString());
            Assert.Single(pipeline.Generate(Request, null, CancellationToken.None).Images);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [Fact]
    public void Module_to_disposes_the_old_weights_so_an_encoder_moved_back_frees_the_device_at_once()
    {
        // Encoders on demand rely on it (else gigabytes wait for the finalizer). The meta device stands in for the GPU.
        using var encoder = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 1, torch.CPU, ScalarType.Float32);
        var before = encoder.parameters().ToList();

        encoder.to(new Device(DeviceType.META));

        Assert.All(encoder.parameters(), p => Assert.Equal(DeviceType.META, p.device_type));
        Assert.All(before, p => Assert.True(p.IsInvalid));
    }

    [Fact]
    public void A_cpu_engine_needs_no_admitted_device_memory()
    {
        using var pipeline = Load(MemoryPlan.AllResident);
        Assert.Equal(default, pipeline.EstimateMemory(Request));
    }
}
