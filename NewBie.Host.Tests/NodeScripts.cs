using System.Diagnostics;

namespace NewBie.Host.Tests;

/// <summary>
/// Runs JavaScript through node in NewBie.Host.Tests/node, where package.json pins the real third-party clients
/// (.ci/run installs them with npm ci).
/// </summary>
public static class NodeScripts
{
    public static string? Folder { get; } = Find();

    /// <summary>Why node tests cannot run here, or null when they can.</summary>
    public static string? Missing { get; } =
        Folder is null ? "NewBie.Host.Tests/node was not found above the test binaries"
        : !OnPath("node") ? "node is not on PATH"
        : !Directory.Exists(Path.Combine(Folder, "node_modules")) ? $"node_modules is absent: run `npm ci` in {Folder} (.ci/run does)"
        : null;

    public static async Task<(int ExitCode, string Output)> RunAsync(string script, IDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo("node", ["-e", script])
        {
            WorkingDirectory = Folder!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            // A hung script (or the browser it started) must not outlive the test.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            return (-1, $"node ran past {timeout ?? TimeSpan.FromSeconds(60)} and was killed\n" + await stdout + await stderr);
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    private static bool OnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, program)) || File.Exists(Path.Combine(dir, program + ".exe")));

    private static string? Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "NewBie.Host.Tests", "node");
            if (File.Exists(Path.Combine(candidate, "package.json"))) return candidate;
        }
        return null;
    }
}

/// <summary>A fact that needs node and the packages of NewBie.Host.Tests/node; skipped, saying why, without them.</summary>
public sealed class NodeFactAttribute : FactAttribute
{
    public NodeFactAttribute()
    {
        if (NodeScripts.Missing is { } why) Skip = why;
    }
}
