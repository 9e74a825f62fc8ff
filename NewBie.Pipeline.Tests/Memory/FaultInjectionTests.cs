using System.Runtime.InteropServices;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Tests.EndToEnd;
using TorchSharp;

namespace NewBie.Pipeline.Tests.Memory;

public sealed class FaultInjectionTests(TinyModelFixture tiny) : IClassFixture<TinyModelFixture>
{
    private static readonly GenerationRequest Request = new() { Prompt = "a cat", Width = 32, Height = 32, Steps = 1, Seed = 3 };

    private NewBiePipeline Load(string? faultSpec) =>
        NewBiePipeline.Load(tiny.Folder, PipelineConfig.Tiny, torch.CPU, torch.ScalarType.Float32,
            PipelineOptions.FromEnvironment(name => name == "NEWBIE_FAULT_OOM" ? faultSpec : null));

    [Theory]
    [InlineData("encode:2")]
    [InlineData("denoise:2")]
    [InlineData("vae:2")]
    public void Injected_stage_fails_its_first_runs_like_a_cuda_oom_then_works(string spec)
    {
        using var pipeline = Load(spec);
        for (var run = 0; run < 2; run++)
        {
            var e = Assert.Throws<ExternalException>(() => pipeline.Generate(Request, null, CancellationToken.None));
            Assert.StartsWith("CUDA out of memory.", e.Message);
            Assert.True(OutOfMemory.IsOutOfMemory(e));
        }
        Assert.Single(pipeline.Generate(Request, null, CancellationToken.None).Images);
    }

    [Fact]
    public void Only_the_named_stage_fails()
    {
        var faults = FaultInjection.Parse("vae:1")!;
        faults.Check(PipelineStage.Encode);
        faults.Check(PipelineStage.Denoise);
        Assert.Throws<ExternalException>(() => faults.Check(PipelineStage.Vae));
        faults.Check(PipelineStage.Vae);
        Assert.Equal(0, faults.Remaining);
    }

    [Fact]
    public void No_variable_means_no_faults()
    {
        Assert.Null(PipelineOptions.FromEnvironment(_ => null).FaultOom);
        Assert.Null(FaultInjection.Parse(""));
    }

    [Theory]
    [InlineData("vae")]
    [InlineData("gpu:1")]
    [InlineData("vae:-1")]
    [InlineData("vae:x")]
    public void Malformed_spec_is_rejected(string spec)
    {
        Assert.Throws<ArgumentException>(() => FaultInjection.Parse(spec));
    }

    [Fact]
    public void Out_of_memory_is_recognised_real_injected_or_wrapped_and_nothing_else_is()
    {
        Assert.True(OutOfMemory.IsOutOfMemory(new ExternalException("CUDA out of memory. Tried to allocate 2.00 GiB")));
        Assert.True(OutOfMemory.IsOutOfMemory(new OutOfMemoryException()));
        Assert.True(OutOfMemory.IsOutOfMemory(new InvalidOperationException("run failed", new ExternalException("CUDA out of memory."))));
        Assert.False(OutOfMemory.IsOutOfMemory(new ExternalException("CUDA error: device-side assert triggered")));
        Assert.False(OutOfMemory.IsOutOfMemory(new ArgumentException("out of memory")));
    }
}
