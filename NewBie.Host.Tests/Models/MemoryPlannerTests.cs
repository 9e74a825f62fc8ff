using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using NewBie.Host.Models;
using NewBie.Host.Tests.Telemetry;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Host.Tests.Models;

/// <summary>Device detection, the memory plan choice and its settings, and how they are reported.</summary>
public sealed class MemoryPlannerTests
{
    private const long GiB = 1L << 30;
    private static readonly MemoryEstimate Full = MemoryEstimate.For(PipelineConfig.NewBieExp01, ScalarType.BFloat16);

    /// <summary>/readyz once the model has loaded: the server holds each answer while it loads (60 s a call at most).</summary>
    private static async Task<JsonElement> ReadyAsync(HttpClient client, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var wait = (int)Math.Clamp(Math.Ceiling((deadline - DateTime.UtcNow).TotalSeconds), 0, 60);
            using var response = await client.GetAsync($"/readyz?wait={wait}");
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            if (response.StatusCode == HttpStatusCode.OK) return body;
            if (DateTime.UtcNow > deadline || body.Str("engine") != "loading") Assert.Fail($"/readyz answered {(int)response.StatusCode}: {body}");
        }
    }

    private static MemoryPlanner Planner(FakeGpuMemory gpu, string setting = "auto") =>
        new(gpu, Options.Create(new ModelsOptions { MemoryPlan = setting }), NullLogger<MemoryPlanner>.Instance);

    [Theory]
    [InlineData(80, MemoryPlan.AllResident)]
    [InlineData(16, MemoryPlan.EncodersOnDemand)]
    [InlineData(12, MemoryPlan.EncodersOnCpu)]
    public void Auto_plan_on_a_simulated_gpu_follows_its_free_memory_and_names_the_card(int freeGiB, MemoryPlan expected)
    {
        var planner = Planner(new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: freeGiB * GiB, name: "NVIDIA H100 80GB HBM3"));

        Assert.Equal(expected, planner.Decide(PipelineConfig.NewBieExp01, new Device(DeviceType.CUDA, 0), ScalarType.BFloat16));

        var decision = planner.Decision!;
        Assert.Equal("cuda:0", decision.Device);
        Assert.Equal("cuda:0 NVIDIA H100 80GB HBM3", decision.Description);
        Assert.Equal(80 * GiB, decision.TotalBytes);
        Assert.Equal(freeGiB * GiB, decision.FreeBytes);
        Assert.Equal(Full.Threshold(MemoryPlan.AllResident), decision.ThresholdBytes[MemoryPlan.AllResident]);
    }

    [Fact]
    public void Auto_plan_on_the_cpu_keeps_everything_resident_whatever_the_driver_says()
    {
        var planner = Planner(new FakeGpuMemory(totalBytes: 8 * GiB, freeBytes: 0));
        Assert.Equal(MemoryPlan.AllResident, planner.Decide(PipelineConfig.Tiny, torch.CPU, ScalarType.Float32));
        Assert.Equal("cpu", planner.Decision!.Description);
    }

    [Fact]
    public void Setting_overrides_the_free_memory_and_unknown_names_are_refused()
    {
        Assert.Equal((MemoryPlan.EncodersOnCpu, "Models:MemoryPlan = encoders-on-cpu"), MemoryPlanner.Choose("encoders-on-cpu", "cuda:0", 80 * GiB, Full));
        Assert.Equal(MemoryPlan.AllResident, MemoryPlanner.Choose("all-resident", "cuda:0", 1 * GiB, Full).Plan);
        Assert.Throws<ArgumentException>(() => MemoryPlanner.Choose("huge", "cuda:0", 80 * GiB, Full));
    }

    [Fact]
    public void Too_little_memory_for_any_plan_picks_encoders_on_cpu_and_says_jobs_will_wait()
    {
        var (plan, reason) = MemoryPlanner.Choose("auto", "cuda:0", 4 * GiB, Full);
        Assert.Equal(MemoryPlan.EncodersOnCpu, plan);
        Assert.Contains("less than any plan", reason);
        Assert.Equal(MemoryPlan.AllResident, MemoryPlanner.Choose("auto", "cuda:0", null, Full).Plan);
    }

    [Fact]
    public async Task Readyz_reports_the_engine_device_and_memory_plan()
    {
        using var app = new NewBieApplication();
        app.Engine.Model = app.Engine.Model with { MemoryPlan = MemoryPlan.EncodersOnDemand };

        var body = await ReadyAsync(app.AdminClient(), TimeSpan.FromSeconds(20));

        Assert.Equal("cpu", body.Str("device"));
        Assert.Equal("encoders-on-demand", body.Str("memory_plan"));
        await app.AdminClient().WaitForAsync(new() { ["newbie_memory_plan{plan=\"encoders-on-demand\"}"] = 1 });
    }

    [Fact]
    public async Task Memory_plan_and_prompt_cache_settings_reach_the_tiny_pipeline_and_are_reported()
    {
        using var app = new NewBieApplication(new()
        {
            ["Models:Model"] = "tiny",
            ["Models:MemoryPlan"] = "encoders-on-cpu",
            ["Models:PromptCacheBytes"] = "12345",
            ["Serilog:MinimumLevel:Default"] = "Information",
        }, scriptedEngine: false);
        var client = app.AdminClient();

        var body = await ReadyAsync(client, TimeSpan.FromSeconds(120));

        Assert.Equal("cpu", body.Str("device"));
        Assert.Equal("encoders-on-cpu", body.Str("memory_plan"));
        var pipeline = Assert.IsType<NewBiePipeline>(app.Service<EngineHost>().Engine);
        Assert.Equal(MemoryPlan.EncodersOnCpu, pipeline.MemoryPlan);
        Assert.Equal(12345, pipeline.PromptCacheCapacityBytes);
        Assert.Equal("Models:MemoryPlan = encoders-on-cpu", app.Service<MemoryPlanner>().Decision!.Reason);
        Assert.True(app.Service<EngineHost>().PeakHostBytesAfterLoad > 0);
        await client.WaitForAsync(new() { ["newbie_memory_plan{plan=\"encoders-on-cpu\"}"] = 1 });

        // The load is logged with its time, plan and peak host memory (issue 7: weights streamed, no managed copy).
        var ready = await WaitForLogAsync(app, "Engine ready:");
        Assert.Equal("encoders-on-cpu", ready.GetProperty("MemoryPlan").GetString());
        Assert.True(ready.GetProperty("PeakHostMiB").GetInt64() > 0);
        Assert.True(ready.GetProperty("LoadMs").GetInt64() >= 0);
        Assert.True(ready.TryGetProperty("PeakHostBeforeMiB", out _));
        var plan = await WaitForLogAsync(app, "Device {Device}, memory plan");
        Assert.Equal("cpu", plan.GetProperty("Device").GetString());
    }

    /// <summary>The first event of the compact JSON log files whose message template starts with <paramref name="template"/>.</summary>
    private static async Task<JsonElement> WaitForLogAsync(NewBieApplication app, string template)
    {
        static bool Matches(JsonElement e, string template) =>
            e.TryGetProperty("@mt", out var mt) && mt.GetString()!.StartsWith(template, StringComparison.Ordinal);
        var events = await LogFiles.WaitForAsync(app.DataDir, events => events.Any(e => Matches(e, template)), TimeSpan.FromSeconds(10));
        return events.First(e => Matches(e, template));
    }

    [Fact]
    public async Task Default_settings_load_the_tiny_pipeline_all_resident_with_the_default_cache()
    {
        using var app = new NewBieApplication(new() { ["Models:Model"] = "tiny" }, scriptedEngine: false);

        var body = await ReadyAsync(app.AdminClient(), TimeSpan.FromSeconds(120));

        Assert.Equal("all-resident", body.Str("memory_plan"));
        var pipeline = Assert.IsType<NewBiePipeline>(app.Service<EngineHost>().Engine);
        Assert.Equal(PipelineOptions.DefaultPromptCacheBytes, pipeline.PromptCacheCapacityBytes);
        Assert.Contains("CPU", app.Service<MemoryPlanner>().Decision!.Reason);
    }

    [Theory]
    [InlineData("Models:MemoryPlan", "huge")]
    [InlineData("Models:PromptCacheBytes", "-1")]
    [InlineData("Jobs:MemoryPollInterval", "00:00:00")]
    public void Bad_memory_settings_stop_the_server_at_start(string key, string value)
    {
        using var app = new NewBieApplication(new() { [key] = value });
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains(key.Split(':')[^1], e.ToString());
    }
}
