using System.Diagnostics;
using System.Text.RegularExpressions;

namespace NewBie.Host.Tests;

/// <summary>
/// Real NewBie processes (the built NewBie.dll) on one temp data folder, as scripts and operators run them: servers
/// on a loopback port, and one-shot verbs. Everything started is killed and the folder removed on dispose.
/// </summary>
public sealed partial class NewBieProcesses : IDisposable
{
    private readonly List<Process> _processes = [];

    public string DataDir { get; } = Directory.CreateTempSubdirectory("newbie-proc-").FullName;

    /// <summary>Starts <c>serve</c> on 127.0.0.1 with a free port; returns once it listens (not once a model is loaded).</summary>
    public async Task<(Process Process, string Url)> StartServerAsync(params string[] extra)
    {
        var process = Launch(["serve", "--data-dir", DataDir, "--urls", "http://127.0.0.1:0", "--models-dir", Path.Combine(DataDir, "models"), .. extra]);
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

    /// <summary>Runs a verb to completion (60 s at most) and returns its exit code and output.</summary>
    public async Task<(int Code, string Out, string Err)> RunAsync(params string[] args)
    {
        using var process = Launch(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);
        _processes.Remove(process);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts the built NewBie.dll with these arguments, output redirected, from the data folder.</summary>
    public Process Launch(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = DataDir };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "NewBie.dll"));
        foreach (var arg in args) start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        _processes.Add(process);
        return process;
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.Dispose();
        }
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }

    [GeneratedRegex(@"Now listening on:?\s*""?(http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
