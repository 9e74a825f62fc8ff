using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace NewBie.Host.Tests.Accounts;

/// <summary>The users and keys verbs of the built NewBie.dll, as scripts call them (design.md §9).</summary>
public sealed partial class AccountsProcessTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("newbie-acct-proc-").FullName;
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
    public async Task Keys_create_prints_the_key_on_the_last_line_and_a_running_server_accepts_it_and_holds_off_the_verbs()
    {
        var (addCode, _, _) = await RunAsync("users", "add", "alice", "--admin", "--data-dir", _dataDir);
        var (keyCode, stdout, _) = await RunAsync("keys", "create", "alice", "--data-dir", _dataDir);
        var key = stdout.TrimEnd().Split('\n')[^1].Trim();

        var url = await StartServerAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var withKey = await http.GetAsync("/v1/admin/users");
        using var anonymous = await new HttpClient().GetAsync($"{url}/v1/jobs");
        var (busyCode, _, busyError) = await RunAsync("keys", "create", "alice", "--data-dir", _dataDir);

        Assert.Equal((0, 0), (addCode, keyCode));
        Assert.Matches("^nb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", key);
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(3, busyCode);
        Assert.Contains("admin API", busyError, StringComparison.Ordinal);
    }

    private async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var process = Launch(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        _processes.Remove(process);
        return (process.ExitCode, await stdout, await stderr);
    }

    private async Task<string> StartServerAsync()
    {
        var process = Launch("serve", "--data-dir", _dataDir, "--urls", "http://127.0.0.1:0", "--models-dir", Path.Combine(_dataDir, "models"));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (ListeningOn().Match(line) is { Success: true } match) return match.Groups[1].Value;
        }
        Assert.Fail($"the server exited ({process.ExitCode}): {await process.StandardError.ReadToEndAsync()}");
        throw new UnreachableException();
    }

    private Process Launch(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dataDir };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "NewBie.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        _processes.Add(process);
        return process;
    }

    [GeneratedRegex(@"Now listening on:?\s*""?(http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
