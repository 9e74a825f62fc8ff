using NewBie.LoadBench;

namespace NewBie.Host.Tests.Jobs;

/// <summary>Real server processes (the built NewBie.dll) on one data folder.</summary>
public sealed class ServerProcessTests : IAsyncLifetime
{
    private readonly ChildServers _servers = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 awaits IAsyncLifetime, not IAsyncDisposable: the child servers must be killed here.
    public async Task DisposeAsync() => await _servers.DisposeAsync();

    [Fact]
    public async Task Second_server_on_the_same_data_dir_is_refused_at_start()
    {
        var first = await _servers.StartAsync();
        using (var http = new HttpClient())
            Assert.True((await http.GetAsync($"{first.Url}/healthz")).IsSuccessStatusCode);

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => _servers.StartAsync());

        Assert.Contains("did not start (exit 3)", refused.Message);
        Assert.Contains("already in use by another NewBie process", refused.Message);
        Assert.Contains(_servers.DataDir, refused.Message);
    }

    [Fact]
    public async Task Server_killed_mid_job_resumes_it_after_restart_with_attempt_two()
    {
        var server = await _servers.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };
        await server.WaitReadyAsync(TimeSpan.FromSeconds(90));
        var interrupted = (await http.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 16 })).Str("id");
        var queued = (await http.SubmitAsync(new { prompt = "2girls", width = 256, height = 256, steps = 2 })).Str("id");
        await http.WaitForStatusAsync(interrupted, "running");

        await server.KillAsync();
        var restarted = await _servers.StartAsync();
        using var again = new HttpClient { BaseAddress = new Uri(restarted.Url) };

        var job = await again.WaitForStatusAsync(interrupted, "succeeded", TimeSpan.FromSeconds(120));
        Assert.Equal(2, job.GetProperty("attempts").GetInt32());
        Assert.Single(job.GetProperty("images").EnumerateArray());
        var other = await again.WaitForStatusAsync(queued, "succeeded", TimeSpan.FromSeconds(60));
        Assert.Equal(1, other.GetProperty("attempts").GetInt32());
        // Exactly one set of outputs per job: the interrupted run's files were replaced, not added to.
        var pngs = Directory.GetFiles(Path.Combine(_servers.DataDir, "outputs"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(2, pngs.Length);
        Assert.Empty(Directory.GetFiles(Path.Combine(_servers.DataDir, "outputs"), "*.tmp", SearchOption.AllDirectories));
    }
}
