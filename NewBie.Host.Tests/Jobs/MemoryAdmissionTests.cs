using System.Net;
using Hangfire;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Telemetry;
using NewBie.Host.Tests.Telemetry;
using NewBie.Pipeline;

namespace NewBie.Host.Tests.Jobs;

/// <summary>VRAM-aware admission (design.md §5) with a simulated GPU: the scripted engine claims cuda:0 and a memory need.</summary>
public sealed class MemoryAdmissionTests
{
    private const long GiB = 1L << 30;
    private static readonly object Small = new { prompt = "1girl", width = 256, height = 256, steps = 2 };
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    private static NewBieApplication App(FakeGpuMemory gpu, MemoryNeed need, string device = "cuda:0")
    {
        var app = new NewBieApplication(new() { ["Jobs:MemoryPollInterval"] = Poll.ToString() });
        app.Engine.Model = app.Engine.Model with { Device = device };
        app.Engine.MemoryNeed = need;
        return app.WithGpu(gpu);
    }

    private static Task<JsonElement> WaitForStageAsync(HttpClient client, string id, string stage) =>
        client.WaitForJobAsync(id, job => job.TryGetProperty("progress", out var p) && p.ValueKind == JsonValueKind.Object && p.Str("stage") == stage,
            $"at stage {stage}");

    /// <summary>
    /// Moves the clock on by the poll interval until the memory wait has looked at free memory again. Once more when
    /// the wait had not yet set its timer when the clock moved (it then never fires on that advance).
    /// </summary>
    private static async Task PollOnceAsync(NewBieApplication app, FakeGpuMemory gpu)
    {
        var polled = gpu.NextQuery;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!polled.IsCompleted)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("the memory wait did not look at free memory again");
            app.Time.Advance(Poll);
            await Task.WhenAny(polled, Task.Delay(50));
        }
    }

    [Fact]
    public async Task Job_waits_in_waiting_for_memory_while_free_vram_is_short_and_starts_when_it_frees()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 1 * GiB);
        using var app = App(gpu, new MemoryNeed(ResidentBytes: 20 * GiB, RunBytes: 4 * GiB));
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");

        var waiting = await WaitForStageAsync(client, id, "waiting_for_memory");
        Assert.Equal("running", waiting.Str("status"));
        Assert.Contains("needs an estimated 4.0 GiB, 1.0 GiB is free", waiting.GetProperty("progress").Str("message"));
        // Polls come and go on the clock, and the job stays put while memory is short.
        for (var i = 0; i < 3; i++) await PollOnceAsync(app, gpu);
        Assert.Equal(0, app.Engine.Runs);
        Assert.Equal("waiting_for_memory", (await client.GetJobAsync(id)).GetProperty("progress").Str("stage"));

        gpu.FreeBytes = 5 * GiB;
        await PollOnceAsync(app, gpu);
        var job = await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(1, app.Engine.Runs);
        Assert.Equal("decoding", job.GetProperty("progress").Str("stage"));
    }

    [Fact]
    public async Task Events_stream_announces_the_wait_for_memory_then_the_stages()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 1 * GiB);
        using var app = App(gpu, new MemoryNeed(20 * GiB, 4 * GiB));
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");
        await WaitForStageAsync(client, id, "waiting_for_memory");

        using var response = await client.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        using var stop = new CancellationTokenSource();
        Task? ticking = null;
        var events = new List<(string Name, JsonElement Data)>();
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
            if (ticking is null && events.Count > 0)
            {
                gpu.FreeBytes = 5 * GiB;
                ticking = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        app.Time.Advance(Poll);
                        await Task.Delay(20);
                    }
                });
            }
        }
        stop.Cancel();
        await ticking!;

        var stages = events.Where(e => e.Name == "stage").Select(e => e.Data.Str("stage")).ToList();
        Assert.Equal(new[] { "waiting_for_memory", "encoding", "denoising", "decoding" }, stages);
        Assert.Contains("needs an estimated 4.0 GiB", events.First(e => e.Name == "stage").Data.Str("message"));
        Assert.Equal("succeeded", events[^1].Data.Str("status"));
    }

    [Fact]
    public async Task Job_waiting_for_memory_ends_canceled_when_hangfire_signals_the_deletion_before_the_api_does()
    {
        // The order a loaded machine can produce: the cancel is recorded and the Hangfire job deleted, and Hangfire's
        // cancellation watcher cancels the run's token before the API's direct signal arrives (here: never).
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 0);
        using var app = App(gpu, new MemoryNeed(20 * GiB, 4 * GiB));
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");
        await WaitForStageAsync(client, id, "waiting_for_memory");

        var record = app.Service<JobStore>().Update(id, j =>
        {
            j.CancelRequested = true;
            return true;
        })!;
        Assert.True(app.Service<IBackgroundJobClientV2>().Delete(record.HangfireJobId));

        await client.WaitForStatusAsync(id, "canceled");
        Assert.Equal(0, app.Engine.Runs);
    }

    [Fact]
    public async Task Job_waiting_for_memory_is_canceled_by_delete_without_running()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 0);
        using var app = App(gpu, new MemoryNeed(20 * GiB, 4 * GiB));
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(Small)).Str("id");
        await WaitForStageAsync(client, id, "waiting_for_memory");

        Assert.Equal(HttpStatusCode.Accepted, (await client.DeleteAsync($"/v1/jobs/{id}")).StatusCode);

        await client.WaitForStatusAsync(id, "canceled");
        Assert.Equal(0, app.Engine.Runs);
    }

    [Fact]
    public async Task Job_that_cannot_fit_even_an_empty_gpu_fails_out_of_memory_at_once_and_the_next_one_runs()
    {
        var gpu = new FakeGpuMemory(totalBytes: 24 * GiB, freeBytes: 23 * GiB);
        using var app = App(gpu, new MemoryNeed(ResidentBytes: 18 * GiB, RunBytes: 8 * GiB));
        var client = app.ClientFor();

        var failed = await client.WaitForStatusAsync((await client.SubmitAsync(Small)).Str("id"), "failed");

        Assert.Equal(JobErrorCodes.OutOfMemory, failed.GetProperty("error").Str("code"));
        Assert.Contains("more than the 24.0 GiB of cuda:0", failed.GetProperty("error").Str("message"));
        Assert.Equal(0, app.Engine.Runs);
        app.Engine.MemoryNeed = new MemoryNeed(18 * GiB, 2 * GiB);
        await client.WaitForStatusAsync((await client.SubmitAsync(Small)).Str("id"), "succeeded");
    }

    [Fact]
    public async Task Job_too_big_untiled_but_fitting_tiled_runs_degraded_from_the_start()
    {
        var gpu = new FakeGpuMemory(totalBytes: 24 * GiB, freeBytes: 23 * GiB);
        using var app = App(gpu, new MemoryNeed(ResidentBytes: 18 * GiB, RunBytes: 8 * GiB));
        app.Engine.TiledMemoryNeed = new MemoryNeed(18 * GiB, 2 * GiB);
        var client = app.ClientFor();

        var job = await client.WaitForStatusAsync((await client.SubmitAsync(Small)).Str("id"), "succeeded");

        Assert.True(job.GetProperty("degraded").GetBoolean());
        Assert.Equal(0, job.GetProperty("oom_retries").GetInt32());
        Assert.Equal(1, app.Engine.Runs);
        Assert.True(app.Engine.LastRequest!.TiledDecode);
    }

    [Fact]
    public async Task Cpu_engine_is_never_held_for_memory()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 0);
        using var app = App(gpu, default, device: "cpu");
        var client = app.ClientFor();
        await client.WaitForStatusAsync((await client.SubmitAsync(Small)).Str("id"), "succeeded");
    }

    [Fact]
    public void Memory_the_allocator_kept_from_an_earlier_run_counts_as_available()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80 * GiB, freeBytes: 1 * GiB);
        var admission = new MemoryAdmission(gpu);
        var need = new MemoryNeed(20 * GiB, 4 * GiB);
        Assert.Equal(AdmissionVerdict.Wait, admission.Check("cuda:0", need).Verdict);

        gpu.FreeBytes = 5 * GiB;
        Assert.Equal(AdmissionVerdict.Start, admission.Check("cuda:0", need).Verdict);
        admission.Started(need);
        // The run's activations stay reserved by libtorch's cache and the driver counts them as used.
        gpu.FreeBytes = 1 * GiB;
        Assert.Equal(AdmissionVerdict.Start, admission.Check("cuda:0", need).Verdict);
        Assert.Equal(AdmissionVerdict.Wait, admission.Check("cuda:0", need with { RunBytes = 6 * GiB }).Verdict);
    }

    [Fact]
    public void Without_the_driver_nothing_waits_and_no_gpu_is_listed()
    {
        // This machine has no NVIDIA driver: the NVML reader answers nothing rather than failing (CPU mode).
        using var nvml = new NvmlGpuMemory();
        if (NativeLibrary.TryLoad("libnvidia-ml.so.1", out var lib))
        {
            NativeLibrary.Free(lib);
            return;
        }
        Assert.Empty(nvml.Devices());
        Assert.Null(nvml.Query("cuda:0"));
        Assert.Equal(AdmissionVerdict.Start, new MemoryAdmission(nvml).Check("cuda:0", new MemoryNeed(1, 1)).Verdict);
    }
}

public static class GpuApplication
{
    /// <summary>The server with a simulated GPU behind IGpuMemory.</summary>
    public static NewBieApplication WithGpu(this NewBieApplication app, IGpuMemory gpu)
    {
        return app.WithServices(services => services.AddSingleton(gpu));
    }
}
