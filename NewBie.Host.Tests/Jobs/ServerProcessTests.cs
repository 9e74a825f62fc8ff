using System.Diagnostics;
using System.Text.RegularExpressions;

namespace NewBie.Host.Tests.Jobs;

/// <summary>Real server processes (the built NewBie.dll) on one data folder.</summary>
public sealed partial class ServerProcessTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("newbie-proc-").FullName;
    private readonly List<Process> _processes = [];

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
        }
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }

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
        Assert.Contains(_dataDir, stderr);
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
        var pngs = Directory.GetFiles(Path.Combine(_dataDir, "outputs"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(2, pngs.Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dataDir, "outputs"), "*.tmp", SearchOption.AllDirectories));
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

    private async Task<(Process Process, string Url)> StartServerAsync(params string[] extra)
    {
        var process = Launch(extra);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (ListeningOn().Match(line) is { Success: true } match)
            {
                // Keep draining both pipes: a child blocked on a full stdout pipe would look like a hung server.
                _ = process.StandardOutput.ReadToEndAsync();
                _ = process.StandardError.ReadToEndAsync();
                return (process, match.Groups[1].Value);
            }
        }
        Assert.Fail($"the server exited ({process.ExitCode}): {await process.StandardError.ReadToEndAsync()}");
        throw new UnreachableException();
    }

    private Process Launch(params string[] extra)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "NewBie.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _dataDir,
        };
        foreach (var arg in new[] { dll, "serve", "--data-dir", _dataDir, "--urls", "http://127.0.0.1:0", "--models-dir", Path.Combine(_dataDir, "models") }.Concat(extra))
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        _processes.Add(process);
        return process;
    }

    [GeneratedRegex(@"Now listening on:?\s*""?(http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
