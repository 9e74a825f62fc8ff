using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Accounts;
using Xunit.Abstractions;

namespace NewBie.Host.Tests.Admin;

/// <summary>
/// The interactive admin pages in a real headless chromium (Debian's, driven by playwright-core through node), against
/// the server on a real Kestrel on 127.0.0.1: what an admin does there, and that nobody else gets in.
/// </summary>
public sealed class AdminBrowserTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery";
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [ChromiumFact]
    public async Task Admin_in_a_browser_watches_the_queue_live_reorders_cancels_pauses_and_resumes_manages_keys_and_a_non_admin_is_refused()
    {
        Assert.True(Chromium.Path is not null, "chromium is required (NEWBIE_REQUIRE_CHROMIUM is set) but /usr/bin/chromium is missing");
        Assert.True(NodeScripts.Missing is null, NodeScripts.Missing);
        var baseUrl = StartKestrel();
        var accounts = _app.Service<AccountStore>();
        accounts.AddUser("boss", Roles.Admin, Password);
        accounts.AddUser("alice", Roles.User, Password);
        var aliceKey = accounts.CreateKey("alice", "browser test").Key;
        // Bob's job holds the worker, so alice's stays queued for as long as the scenario needs it.
        _app.Engine.Hold();
        var bob = _app.ClientWithKey("bob");
        var running = (await bob.SubmitAsync(new { prompt = "held", width = 1024, height = 1024, steps = 28 })).Str("id");
        await bob.WaitForStatusAsync(running, "running");
        var alice = _app.ClientWithBearer(aliceKey);
        var queued = (await alice.SubmitAsync(new { prompt = "waiting", width = 768, height = 1344, steps = 28 })).Str("id");
        await bob.SubmitAsync(new { prompt = "also waiting", width = 1024, height = 1024, count = 2, steps = 28 });
        var screenshot = ArtifactPath("admin-queue.png");

        // The pages' refresh timer runs on the app's fake clock: keep it moving while the browser watches.
        using var stop = new CancellationTokenSource();
        var clock = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                _app.Time.Advance(TimeSpan.FromMilliseconds(500));
                await Task.Delay(100);
            }
        });
        var (exit, log) = await NodeScripts.RunAsync("require('./admin-browser.cjs')", new Dictionary<string, string>
        {
            ["BASE_URL"] = baseUrl, ["CHROMIUM"] = Chromium.Path!, ["ADMIN"] = "boss", ["USER"] = "alice", ["PASSWORD"] = Password,
            ["USER_KEY"] = aliceKey, ["JOB"] = queued, ["SCREENSHOT"] = screenshot,
        }, TimeSpan.FromMinutes(4));
        await stop.CancelAsync();
        await clock;
        _app.Engine.Release();
        output.WriteLine(log);
        output.WriteLine($"screenshot of the queue page: {screenshot}");

        Assert.True(exit == 0, log);
        Assert.Equal("canceled", (await alice.GetJobAsync(queued)).Str("status"));
        Assert.False(_app.Service<NewBie.Host.Admin.QueueAdmin>().IsPaused);
        Assert.True(new FileInfo(screenshot).Length > 0);
    }

    /// <summary>The app on a real Kestrel on a free loopback port (a browser cannot reach the in-memory test server).</summary>
    private string StartKestrel()
    {
        _app.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _app.StartServer();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return address.TrimEnd('/');
    }

    /// <summary>Where a test keeps what a person may want to look at afterwards: TestResults beside the test binaries.</summary>
    private static string ArtifactPath(string name)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, "TestResults");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, name);
    }
}

/// <summary>
/// Debian's chromium (/usr/bin/chromium) and node with playwright-core. Absent, these tests skip, unless
/// NEWBIE_REQUIRE_CHROMIUM is set (as in .ci/run, which installs them): then they fail.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_CHROMIUM") is { Length: > 0 }) return;
        if (Chromium.Path is null) Skip = "chromium is not installed (apt-get install chromium); .ci/run installs it";
        else if (NodeScripts.Missing is { } why) Skip = why;
    }
}

public static class Chromium
{
    public static string? Path { get; } = File.Exists("/usr/bin/chromium") ? "/usr/bin/chromium" : null;
}
