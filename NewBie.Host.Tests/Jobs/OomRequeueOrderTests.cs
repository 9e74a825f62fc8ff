using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Tests.Jobs;

/// <summary>The out-of-memory re-queue goes behind lighter jobs queued meanwhile (design.md §5).</summary>
public sealed class OomRequeueOrderTests
{
    /// <summary>Runs out of memory for the "heavy" prompt until its faults are used up, holding its first run until released.</summary>
    private sealed class HeavyOomEngine(int heavyFaults) : IImageGenerator, IEngineFactory
    {
        private int _faults = heavyFaults;
        public ManualResetEventSlim FirstHeavyRun { get; } = new(false);
        public ConcurrentQueue<string> RunOrder { get; } = new();

        public ModelInfo Model { get; } = new("heavy-oom", true, "cpu", "float32", TimeSpan.Zero);

        public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken) => this;

        public PromptReport Inspect(string prompt, string systemPrompt) => new(1, 0, 1, 0, systemPrompt);

        public GenerationResult Generate(GenerationRequest request, IProgress<StepProgress>? progress, CancellationToken cancellationToken)
        {
            RunOrder.Enqueue(request.Prompt);
            if (request.Prompt == "heavy")
            {
                FirstHeavyRun.Wait(cancellationToken);
                if (Interlocked.Decrement(ref _faults) >= 0) throw new ExternalException(OutOfMemory.CudaMessage);
            }
            var image = new GeneratedImage(0, request.Width, request.Height, request.Seed, new byte[request.Width * request.Height * 3]);
            return new GenerationResult([image], Inspect(request.Prompt, "none"), Inspect(request.NegativePrompt, "none"));
        }

        public void Dispose() { }
    }

    [Fact]
    public async Task Requeued_oom_job_runs_after_a_lighter_job_submitted_after_it()
    {
        var engine = new HeavyOomEngine(heavyFaults: 2);
        using var app = new NewBieApplication(new() { ["Jobs:OomRequeueDelay"] = TimeSpan.Zero.ToString() }, engineFactory: engine);
        var client = app.ClientFor();
        var heavy = (await client.SubmitAsync(new { prompt = "heavy", width = 256, height = 256, steps = 2 })).Str("id");
        await client.WaitForStatusAsync(heavy, "running");
        var light = (await client.SubmitAsync(new { prompt = "light", width = 256, height = 256, steps = 2 })).Str("id");

        engine.FirstHeavyRun.Set();

        var lightDone = await client.WaitForStatusAsync(light, "succeeded");
        var heavyDone = await client.WaitForStatusAsync(heavy, "succeeded");
        // First run, its degraded retry, then (re-queued) the light job before the heavy one's last run.
        Assert.Equal(new[] { "heavy", "heavy", "light", "heavy" }, engine.RunOrder);
        Assert.Equal("low", heavyDone.Str("priority"));
        Assert.Equal(2, heavyDone.GetProperty("oom_retries").GetInt32());
        Assert.Equal("normal", lightDone.Str("priority"));
    }
}
