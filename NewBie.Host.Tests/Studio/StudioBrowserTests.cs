using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Accounts;
using NewBie.Host.Tests.Admin;
using Xunit.Abstractions;

namespace NewBie.Host.Tests.Studio;

/// <summary>
/// The studio in a real headless chromium (Debian's, driven by playwright-core through node) against the server on a
/// real Kestrel on 127.0.0.1: what a user does there from sign-in to a zip, that the storage cap refuses, and that a
/// second user sees nothing of the first one's.
/// </summary>
[LongRunning]
public sealed class StudioBrowserTests(ITestOutputHelper output) : IDisposable
{
    private const string Password = "correct horse battery";

    // 20 MiB: the scenario's 512×512 jobs fit, a job of four 2048×2048 images (48 MiB at its largest) does not.
    private readonly NewBieApplication _app = new(new() { ["Accounts:Defaults:MaxStorageBytes"] = (20 << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) });

    public void Dispose() => _app.Dispose();

    [ChromiumFact]
    public async Task User_builds_an_xml_prompt_watches_it_run_reruns_deletes_zips_and_a_second_user_sees_none_of_it()
    {
        Assert.True(Chromium.Path is not null, "chromium is required (NEWBIE_REQUIRE_CHROMIUM is set) but /usr/bin/chromium is missing");
        Assert.True(NodeScripts.Missing is null, NodeScripts.Missing);
        // Slow enough steps that the page shows the bar moving.
        _app.Engine.StepDelay = TimeSpan.FromMilliseconds(100);
        _app.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        _app.StartServer();
        var baseUrl = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single().TrimEnd('/');
        var accounts = _app.Service<AccountStore>();
        accounts.AddUser("alice", Roles.User, Password);
        accounts.AddUser("bob", Roles.User, Password);
        var screenshots = Path.Combine(AppContext.BaseDirectory, "TestResults");
        Directory.CreateDirectory(screenshots);

        // The pages' debounce and refresh throttle run on the app's fake clock: keep it moving while the browser works.
        using var stop = new CancellationTokenSource();
        var clock = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                _app.Time.Advance(TimeSpan.FromMilliseconds(500));
                await Task.Delay(100);
            }
        });
        var (exit, log) = await NodeScripts.RunAsync("require('./studio-browser.cjs')", new Dictionary<string, string>
        {
            ["BASE_URL"] = baseUrl, ["CHROMIUM"] = Chromium.Path!, ["USER"] = "alice", ["OTHER"] = "bob", ["PASSWORD"] = Password,
            ["SCREENSHOTS"] = screenshots,
        }, TimeSpan.FromMinutes(5));
        await stop.CancelAsync();
        await clock;
        output.WriteLine(log);
        output.WriteLine($"screenshots in {screenshots}");

        Assert.True(exit == 0, log);
        Assert.True(new FileInfo(Path.Combine(screenshots, "studio-phone.png")).Length > 0);
    }
}
