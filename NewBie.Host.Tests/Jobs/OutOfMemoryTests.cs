using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Tests.Telemetry;
using NewBie.Pipeline;

namespace NewBie.Host.Tests.Jobs;

/// <summary>GPU out-of-memory recovery of a job (design.md §5), on the real tiny model with NEWBIE_FAULT_OOM-style injected faults.</summary>
public sealed class OutOfMemoryTests
{
    private static readonly Lazy<string> TinyFolder = new(() =>
        TinyModel.EnsureFolder(Path.Combine(Directory.CreateTempSubdirectory("newbie-oom-").FullName, "model")));

    private static readonly object Job = new { prompt = "<character_1><n>miku</n></character_1>", width = 256, height = 256, steps = 2, seed = 5 };

    /// <summary>The tiny model whose pipeline gets <paramref name="faultSpec"/> as if from the environment variable.</summary>
    private sealed class FaultyTinyEngine(string? faultSpec) : IEngineFactory
    {
        public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken) =>
            NewBiePipeline.Load(TinyFolder.Value, PipelineConfig.Tiny, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32,
                PipelineOptions.FromEnvironment(name => name == "NEWBIE_FAULT_OOM" ? faultSpec : null));
    }

    private static NewBieApplication App(string? faultSpec, TimeSpan requeueDelay) => new(new()
    {
        ["Models:Model"] = "tiny",
        ["Jobs:OomRequeueDelay"] = requeueDelay.ToString(),
    }, engineFactory: new FaultyTinyEngine(faultSpec));

    private static async Task<HttpClient> ReadyClientAsync(NewBieApplication app)
    {
        var client = app.ClientFor();
        // Held by the server until the tiny model has loaded (or 60 s passed).
        using var ready = await client.GetAsync("/readyz?wait=60");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, $"/readyz answered {(int)ready.StatusCode} after the tiny model's load: {await ready.Content.ReadAsStringAsync()}");
        return client;
    }

    [Fact]
    public async Task Vae_oom_once_is_retried_degraded_in_the_same_run_and_succeeds()
    {
        using var app = App("vae:1", TimeSpan.Zero);
        var client = await ReadyClientAsync(app);

        var job = await client.WaitForStatusAsync((await client.SubmitAsync(Job)).Str("id"), "succeeded", TimeSpan.FromSeconds(60));

        Assert.True(job.GetProperty("degraded").GetBoolean());
        Assert.Equal(1, job.GetProperty("oom_retries").GetInt32());
        Assert.Equal(1, job.GetProperty("attempts").GetInt32());
        Assert.Single(job.GetProperty("images").EnumerateArray());
    }

    [Fact]
    public async Task Persistent_oom_fails_out_of_memory_after_one_requeue_and_the_server_keeps_serving()
    {
        // Three faults: the first run, its degraded retry, and the degraded re-run after the re-queue.
        using var app = App("vae:3", TimeSpan.Zero);
        var client = await ReadyClientAsync(app);

        var failed = await client.WaitForStatusAsync((await client.SubmitAsync(Job)).Str("id"), "failed", TimeSpan.FromSeconds(60));

        Assert.Equal(JobErrorCodes.OutOfMemory, failed.GetProperty("error").Str("code"));
        Assert.True(failed.GetProperty("degraded").GetBoolean());
        Assert.Equal(2, failed.GetProperty("oom_retries").GetInt32());
        Assert.Equal(2, failed.GetProperty("attempts").GetInt32());

        var next = await client.WaitForStatusAsync((await client.SubmitAsync(Job)).Str("id"), "succeeded", TimeSpan.FromSeconds(60));
        Assert.False(next.GetProperty("degraded").GetBoolean());
        Assert.Equal(0, next.GetProperty("oom_retries").GetInt32());
    }

    [Fact]
    public async Task Degraded_oom_requeues_the_job_to_run_after_the_delay()
    {
        using var app = App("vae:2", TimeSpan.FromHours(1));
        var client = await ReadyClientAsync(app);
        var id = (await client.SubmitAsync(Job)).Str("id");

        var job = await client.WaitForJobAsync(id, j => j.GetProperty("oom_retries").GetInt32() >= 2, "re-queued twice", TimeSpan.FromSeconds(60));
        var deadline = DateTime.UtcNow.AddSeconds(60);

        Assert.Equal("queued", job.Str("status"));
        Assert.True(job.GetProperty("degraded").GetBoolean());
        // The record counts the re-queue just before the new Hangfire job exists; give it a moment. Read every 20 ms:
        // Hangfire announces a state change only to its global filters, which every test of the run would share.
        using var connection = app.Service<Hangfire.JobStorage>().GetConnection();
        while (connection.GetJobData(app.Service<JobStore>().Find(id)!.HangfireJobId!).State != Hangfire.States.ScheduledState.StateName)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"job {id} has no scheduled Hangfire job");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Repeated_prompts_count_prompt_cache_hits_and_misses_in_the_metrics()
    {
        using var app = App(null, TimeSpan.Zero);
        var client = await ReadyClientAsync(app);
        for (var i = 0; i < 2; i++)
            await client.WaitForStatusAsync((await client.SubmitAsync(Job)).Str("id"), "succeeded", TimeSpan.FromSeconds(60));

        // Prompt and empty negative prompt: both computed by the first job, both served from the cache for the second.
        await app.AdminClient().WaitForAsync(new()
        {
            ["newbie_prompt_cache_misses_total"] = 2,
            ["newbie_prompt_cache_hits_total"] = 2,
        });
    }
}
