using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Accounts;
using NewBie.Host.Telemetry;
using NewBie.Host.Tests.Telemetry;

namespace NewBie.Host.Tests.Admin;

public sealed class SystemPageTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task System_page_shows_the_model_device_worker_and_failures_with_codes_and_the_usage_page_its_bars()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var alice = _app.ClientWithKey("alice");
        var good = (await alice.SubmitAsync(new { prompt = "fine", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(good, "succeeded");
        _app.Engine.Failure = new InvalidOperationException("the sampler exploded");
        var bad = (await alice.SubmitAsync(new { prompt = "broken", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(bad, "failed");

        using var response = await admin.GetAsync("/admin/system");
        var html = await response.Content.ReadAsStringAsync();
        using var asAlice = await alice.GetAsync("/admin/system");
        using var usageResponse = await admin.GetAsync("/admin/usage");
        var usage = await usageResponse.Content.ReadAsStringAsync();
        using var usageAsAlice = await alice.GetAsync("/admin/usage");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("scripted (tiny)", html);
        Assert.Contains("cpu (float32)", html);
        Assert.Contains("""<td id="memory-plan">all-resident</td>""", html);
        Assert.Contains("""<td id="worker">running</td>""", html);
        Assert.Contains("""<td id="vram">not reported (no GPU, or the NVIDIA driver cannot be asked)</td>""", html);
        Assert.Contains($"<td>{bad}</td>", html);
        Assert.Contains("""<td class="code">internal</td>""", html);
        Assert.Contains("the sampler exploded", html);
        Assert.Equal(HttpStatusCode.Forbidden, asAlice.StatusCode);
        Assert.Equal(HttpStatusCode.OK, usageResponse.StatusCode);
        Assert.Contains("<rect", usage);
        Assert.Contains("""<td class="images">1</td>""", usage);
        Assert.Equal(HttpStatusCode.Forbidden, usageAsAlice.StatusCode);
    }

    [Fact]
    public async Task System_page_shows_the_gpu_memory_the_driver_reports_for_the_engine_device()
    {
        var gpu = new FakeGpuMemory(totalBytes: 78L << 30, freeBytes: 75L << 30);
        using var app = _app.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IGpuMemory>(gpu)));
        var accounts = app.Services.GetRequiredService<AccountStore>();
        accounts.AddUser("boss", Roles.Admin, password: null);
        var admin = app.CreateClient();
        admin.DefaultRequestHeaders.Authorization = new("Bearer", accounts.CreateKey("boss", "test").Key);

        var html = await admin.GetStringAsync("/admin/system");

        Assert.Contains("""<td id="vram">3.0 GiB used, 75.0 GiB free of 78.0 GiB</td>""", html);
        Assert.Equal("cpu", gpu.AskedFor);
    }
}
