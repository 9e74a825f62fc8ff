using System.Diagnostics;
using System.Text.RegularExpressions;

namespace NewBie.LoadBench;

/// <summary>
/// One real NewBie server (the built NewBie.dll beside this assembly) on a loopback port and a given data folder,
/// optionally inside a wrapper command (unshare for a private tmpfs), and the one-shot verbs (users, keys). Kill is
/// SIGKILL. The one way both the load bench and the test suite (which links this file) start child processes.
/// </summary>
internal sealed partial class ServerProcess : IAsyncDisposable
{
    private ServerProcess(Process process, string url)
    {
        Process = process;
        Url = url;
    }

    public Process Process { get; }

    public string Url { get; }

    public static string HostDll => Path.Combine(AppContext.BaseDirectory, "NewBie.dll");

    /// <summary>
    /// Starts <c>serve --model MODEL</c> (the tiny model unless told otherwise); returns once it listens, not once the
    /// model is loaded (<see cref="WaitReadyAsync"/>). <paramref name="settings"/> are KEY=VALUE configuration;
    /// <paramref name="environment"/> adds variables (e.g. the runtime's DOTNET_gcServer). A server
    /// that exits before it listens throws, with its stderr in the message.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string dataDir, IEnumerable<string> settings, IReadOnlyList<string>? wrapper = null, string model = "tiny",
        IReadOnlyDictionary<string, string>? environment = null)
    {
        string[] serve = ["dotnet", HostDll, "serve", "--urls", "http://127.0.0.1:0", "--data-dir", dataDir,
            "--models-dir", Path.Combine(dataDir, "models"), "--model", model, .. settings.Select(s => "--" + s)];
        string[] command = [.. wrapper ?? [], .. serve];
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dataDir };
        foreach (var arg in command[1..]) start.ArgumentList.Add(arg);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                if (ListeningOn().Match(line) is not { Success: true } match) continue;
                // Keep draining stdout: a child blocked on a full pipe would look like a hung server.
                _ = process.StandardOutput.ReadToEndAsync();
                return new ServerProcess(process, match.Groups[1].Value);
            }
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }
        await process.WaitForExitAsync();
        throw new InvalidOperationException($"the server did not start (exit {process.ExitCode}): {await stderr}");
    }

    /// <summary>
    /// Returns once /readyz answers 200 (the tiny model is loaded). The server holds each answer while the model loads
    /// (<c>/readyz?wait=</c>), so this asks again only after loading ended; should a check without an event to wait on
    /// (storage, queue) still say not ready, it asks again every 100 ms.
    /// </summary>
    public async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"the server at {Url} was not ready after {timeout}");
            var wait = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 1, 60);
            using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(wait + 10));
            try
            {
                using var response = await http.GetAsync($"{Url}/readyz?wait={wait}", guard.Token);
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (Process.HasExited) throw new InvalidOperationException($"the server exited ({Process.ExitCode}) before it was ready");
            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL, no shutdown of any kind: what a power cut or the OOM killer does.</summary>
    public async Task KillAsync()
    {
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        await Process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        Process.Dispose();
    }

    /// <summary>Runs a one-shot verb (users, keys) to completion (2 min at most); its exit code and output.</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(HostDll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"NewBie {string.Join(' ', args)} did not exit within 2 min");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Runs a one-shot verb on a data folder no server holds; returns stdout, throws on a non-zero exit.</summary>
    public static async Task<string> RunVerbAsync(params string[] args)
    {
        var (code, stdout, stderr) = await RunAsync(args);
        if (code != 0) throw new InvalidOperationException($"NewBie {string.Join(' ', args)} exited {code}: {stderr}");
        return stdout;
    }

    /// <summary>Creates a user (with the users verb, before the server starts) and returns a new API key of it.</summary>
    public static async Task<string> CreateUserAsync(string dataDir, string name, bool admin = false)
    {
        await RunVerbAsync(["users", "add", name, .. admin ? new[] { "--admin" } : [], "--data-dir", dataDir]);
        var output = await RunVerbAsync("keys", "create", name, "--data-dir", dataDir);
        return output.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("nb_", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"Now listening on:?\s*""?(http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
