using NewBie.Host.Accounts;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Telemetry;

namespace NewBie.Host.Tests.Telemetry;

public sealed class MetricsTests : IDisposable
{
    private const string ScrapeToken = "scrape-token-0123456789";

    private readonly NewBieApplication _app = new(new() { ["Telemetry:MetricsToken"] = ScrapeToken });

    public void Dispose() => _app.Dispose();

    private static object Job(int count, int steps = 3, string priority = "normal") =>
        new { prompt = "1girl", width = 256, height = 256, steps, count, priority };

    /// <summary>Two users' jobs, one of which fails: what /metrics must show afterwards.</summary>
    private async Task RunSomeJobsAsync()
    {
        var alice = _app.ClientFor("alice");
        var bob = _app.ClientFor("bob");
        foreach (var (client, count) in new[] { (alice, 2), (alice, 2), (bob, 1) })
            await client.WaitForStatusAsync((await client.SubmitAsync(Job(count))).Str("id"), "succeeded");
        _app.Engine.Failure = new InvalidOperationException("scripted failure");
        var failed = (await bob.SubmitAsync(Job(1))).Str("id");
        await bob.WaitForStatusAsync(failed, "failed");
        _app.Engine.Failure = null;
    }

    [Fact]
    public async Task Metrics_after_jobs_count_images_by_user_failures_by_code_and_time_waits_runs_and_steps()
    {
        await RunSomeJobsAsync();

        var samples = await _app.AdminClient().WaitForAsync(new()
        {
            ["newbie_images_generated_total{user=\"alice\"}"] = 4,
            ["newbie_images_generated_total{user=\"bob\"}"] = 1,
            ["newbie_job_failures_total{code=\"internal\"}"] = 1,
            ["newbie_job_run_seconds_count{status=\"succeeded\"}"] = 3,
            ["newbie_job_run_seconds_count{status=\"failed\"}"] = 1,
            ["newbie_job_wait_seconds_count{priority=\"normal\"}"] = 4,
            // 2 jobs × 2 images × 3 steps + 1 × 1 × 3; the failed run threw before its first step.
            ["newbie_denoise_step_seconds_count"] = 15,
            ["newbie_queue_depth{priority=\"low\"}"] = 0,
            ["newbie_queue_depth{priority=\"normal\"}"] = 0,
            ["newbie_queue_depth{priority=\"high\"}"] = 0,
            ["newbie_model_load_seconds{model=\"scripted\"}"] = 0,
        });

        Assert.Equal(15, samples["newbie_denoise_step_seconds_bucket{le=\"+Inf\"}"]);
        Assert.True(samples["newbie_denoise_step_seconds_sum"] > 0);
        Assert.True(samples["newbie_job_run_seconds_sum{status=\"succeeded\"}"] > 0);
        // Worker time is charged to each job's owner (every scripted step sleeps, so each run takes measurable time).
        Assert.True(samples["newbie_gpu_seconds_total{user=\"alice\"}"] > 0);
        Assert.True(samples["newbie_gpu_seconds_total{user=\"bob\"}"] > 0);
        // The fake clock stands still between submit and start.
        Assert.Equal(0, samples["newbie_job_wait_seconds_sum{priority=\"normal\"}"]);
    }

    [Fact]
    public async Task Job_wait_is_the_time_from_submit_to_start()
    {
        _app.Engine.Hold();
        var client = _app.ClientWithKey("operator", Roles.Admin); // only admins may ask for the high class
        var first = (await client.SubmitAsync(Job(1, steps: 1))).Str("id");
        await client.WaitForStatusAsync(first, "running");
        var second = (await client.SubmitAsync(Job(1, steps: 1, priority: "high"))).Str("id");
        _app.Time.Advance(TimeSpan.FromSeconds(42));
        _app.Engine.Release();
        await client.WaitForStatusAsync(second, "succeeded");

        await client.WaitForAsync(new()
        {
            ["newbie_job_wait_seconds_sum{priority=\"high\"}"] = 42,
            ["newbie_job_wait_seconds_bucket{priority=\"high\",le=\"30\"}"] = 0,
            ["newbie_job_wait_seconds_bucket{priority=\"high\",le=\"60\"}"] = 1,
        });
    }

    [Fact]
    public async Task Queue_depth_counts_queued_jobs_by_priority()
    {
        _app.Engine.Hold();
        var client = _app.ClientWithKey("operator", Roles.Admin); // only admins may ask for the high class
        var running = (await client.SubmitAsync(Job(1))).Str("id");
        await client.WaitForStatusAsync(running, "running");
        await client.SubmitAsync(Job(1, priority: "high"));
        await client.SubmitAsync(Job(1, priority: "high"));
        await client.SubmitAsync(Job(1, priority: "low"));

        await client.WaitForAsync(new()
        {
            ["newbie_queue_depth{priority=\"high\"}"] = 2,
            ["newbie_queue_depth{priority=\"normal\"}"] = 0,
            ["newbie_queue_depth{priority=\"low\"}"] = 1,
        });
    }

    [Fact]
    public async Task Rate_limit_refusals_and_prompt_cache_lookups_are_counted_through_NewBieMetrics()
    {
        var metrics = _app.Service<NewBieMetrics>();
        metrics.RateLimited("login_per_ip");
        metrics.RateLimited("login_per_ip");
        metrics.RateLimited("jobs_per_user");
        metrics.PromptCacheHit();
        metrics.PromptCacheHit();
        metrics.PromptCacheMiss();

        await _app.AdminClient().WaitForAsync(new()
        {
            ["newbie_rate_limited_total{reason=\"login_per_ip\"}"] = 2,
            ["newbie_rate_limited_total{reason=\"jobs_per_user\"}"] = 1,
            ["newbie_prompt_cache_hits_total"] = 2,
            ["newbie_prompt_cache_misses_total"] = 1,
        });
    }

    [Fact]
    public async Task Two_servers_in_one_process_keep_their_metrics_apart()
    {
        using var other = new NewBieApplication();
        other.Service<NewBieMetrics>().RateLimited("other_server");
        _app.Service<NewBieMetrics>().RateLimited("this_server");

        await other.AdminClient().WaitForAsync(new() { ["newbie_rate_limited_total{reason=\"other_server\"}"] = 1 });
        var samples = await _app.AdminClient().WaitForAsync(new() { ["newbie_rate_limited_total{reason=\"this_server\"}"] = 1 });

        Assert.DoesNotContain("newbie_rate_limited_total{reason=\"other_server\"}", samples.Keys);
    }

    [Fact]
    public async Task Gpu_memory_is_unset_on_cpu()
    {
        await _app.AdminClient().WaitForAsync(new() { ["newbie_model_load_seconds{model=\"scripted\"}"] = 0 });

        var text = await _app.AdminClient().ScrapeAsync();

        Assert.DoesNotContain("newbie_gpu_memory", text);
        Assert.Null(new NvmlGpuMemory().Query("cpu"));
    }

    [Fact]
    public async Task Gpu_memory_gauges_report_what_the_driver_says_for_the_engine_device()
    {
        var gpu = new FakeGpuMemory(totalBytes: 80_000_000_000, freeBytes: 77_000_000_000);
        using var app = _app.WithWebHostBuilder(b => b.ConfigureServices(s => s.AddSingleton<IGpuMemory>(gpu)));

        await app.CreateClient().WaitForAsync(new()
        {
            ["newbie_gpu_memory_used_bytes"] = 3_000_000_000,
            ["newbie_gpu_memory_free_bytes"] = 77_000_000_000,
            ["newbie_gpu_memory_total_bytes"] = 80_000_000_000,
            ["newbie_memory_plan{plan=\"all-resident\"}"] = 1,
        });
        Assert.Equal("cpu", gpu.AskedFor);
    }

    [PromtoolFact]
    public async Task Metrics_output_passes_promtool_check_metrics()
    {
        await RunSomeJobsAsync();
        var metrics = _app.Service<NewBieMetrics>();
        metrics.RateLimited("login_per_ip");
        metrics.PromptCacheHit();
        metrics.PromptCacheMiss();
        // As Prometheus scrapes: with the token as a bearer credential.
        var text = await _app.CreateClient().WithBearer(ScrapeToken).ScrapeAsync();

        var (exitCode, output) = await Promtool.CheckMetricsAsync(text);

        Assert.True(exitCode == 0 && output.Trim().Length == 0, $"promtool check metrics exited {exitCode}:\n{output}\n--- scraped:\n{text}");
    }

    [Fact]
    public async Task Metrics_are_for_admins_and_the_scrape_token_only()
    {
        // A user exists, so a loopback caller without credentials is anonymous.
        var user = _app.ClientFor("alice");
        var anonymous = _app.CreateClient();

        using var anonymousScrape = await anonymous.GetAsync("/metrics");
        using var userScrape = await user.GetAsync("/metrics");
        using var wrongToken = await _app.CreateClient().WithBearer("scrape-token-9876543210").GetAsync("/metrics");
        using var token = await _app.CreateClient().WithBearer(ScrapeToken).GetAsync("/metrics");
        using var admin = await _app.AdminClient().GetAsync("/metrics");

        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, anonymousScrape.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, userScrape.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, wrongToken.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, token.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, admin.StatusCode);
        Assert.Contains("newbie_", await token.Content.ReadAsStringAsync());
    }
}
