using System.Diagnostics;

namespace NewBie.Host.Tests.Jobs;

/// <summary>Real server processes (the built NewBie.dll) on one data folder.</summary>
public sealed class ServerProcessTests : IDisposable
{
    private readonly NewBieProcesses _processes = new();

    public void Dispose() => _processes.Dispose();

    [Fact]
    public async Task Second_server_on_the_same_data_dir_is_refused_at_start()
    {
        var (_, url) = await StartServerAsync();
        using (var http = new HttpClient())
            Assert.True((await http.GetAsync($"{url}/healthz")).IsSuccessStatusCode);

        var second = Launch();
        var stderr = await second.StandardError.ReadToEndAsync();
        await second.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);

        Assert.NotEqual(0, second.ExitCode);
        Assert.Contains("already in use by another NewBie process", stderr);
        Assert.Contains(_processes.DataDir, stderr);
    }

    [Fact]
    public async Task Server_killed_mid_job_resumes_it_after_restart_with_attempt_two()
    {
        var (server, url) = await StartServerAsync("--model", "tiny");
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        await WaitReadyAsync(http);
        var interrupted = (await http.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 16 })).Str("id");
        var queued = (await http.SubmitAsync(new { prompt = "2girls", width = 256, height = 256, steps = 2 })).Str("id");
        await http.WaitForStatusAsync(interrupted, "running");

        server.Kill(entireProcessTree: true);
        await server.WaitForExitAsync();
        var (_, restarted) = await StartServerAsync("--model", "tiny");
        using var again = new HttpClient { BaseAddress = new Uri(restarted) };

        var job = await again.WaitForStatusAsync(interrupted, "succeeded", TimeSpan.FromSeconds(120));
        Assert.Equal(2, job.GetProperty("attempts").GetInt32());
        Assert.Single(job.GetProperty("images").EnumerateArray());
        var other = await again.WaitForStatusAsync(queued, "succeeded", TimeSpan.FromSeconds(60));
        Assert.Equal(1, other.GetProperty("attempts").GetInt32());
        // Exactly one set of outputs per job: the interrupted run's files were replaced, not added to.
        var pngs = Directory.GetFiles(Path.Combine(_processes.DataDir, "outputs"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(2, pngs.Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(_processes.DataDir, "outputs"), "*.tmp", SearchOption.AllDirectories));
    }

    private static async Task WaitReadyAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!(await http.GetAsync("/readyz")).IsSuccessStatusCode)
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("the child server never became ready");
            await Task.Delay(100);
        }
    }

    private Task<(Process Process, string Url)> StartServerAsync(params string[] extra) => _processes.StartServerAsync(extra);

    private Process Launch() => _processes.Launch("serve", "--data-dir", _processes.DataDir, "--urls", "http://127.0.0.1:0", "--models-dir", Path.Combine(_processes.DataDir, "models"));
}
