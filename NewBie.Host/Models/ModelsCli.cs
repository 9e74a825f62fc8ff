using Spectre.Console;

namespace NewBie.Host.Models;

/// <summary>
/// The "models" verb: <c>NewBie models pull [--endpoint URL] [--token T] [--models-dir DIR] [--manifest FILE]</c> and
/// <c>NewBie models verify [--models-dir DIR] [--manifest FILE]</c>. Exit codes: 0 done, 1 a file or check failed, 2 usage.
/// </summary>
public static class ModelsCli
{
    public const string Usage = "Usage: NewBie models pull [--endpoint URL] [--token T] [--models-dir DIR] [--manifest FILE]\n       NewBie models verify [--models-dir DIR] [--manifest FILE]";

    public static async Task<int> RunAsync(string[] args, IAnsiConsole console, CancellationToken cancellationToken = default)
    {
        if (args is not [var command, .. var rest] || command is not ("pull" or "verify") || ParseOptions(rest) is not { } options)
        {
            console.WriteLine(Usage);
            return 2;
        }
        var modelsDir = Path.GetFullPath(options.GetValueOrDefault("models-dir") ?? "models");
        ModelManifest manifest;
        try
        {
            manifest = ModelManifest.Load(options.GetValueOrDefault("manifest") ?? ModelManifest.DefaultPath);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException or KeyNotFoundException)
        {
            console.MarkupLineInterpolated($"[red]Cannot read the manifest:[/] {e.Message}");
            return 1;
        }
        return command == "pull"
            ? await PullAsync(manifest, modelsDir, options, console, cancellationToken)
            : await VerifyAsync(manifest, modelsDir, console, cancellationToken);
    }

    private static async Task<int> PullAsync(ModelManifest manifest, string modelsDir, Dictionary<string, string> options, IAnsiConsole console, CancellationToken cancellationToken)
    {
        // The Hugging Face tools' conventions: HF_ENDPOINT names a mirror, HF_TOKEN a token for gated repositories.
        var endpoint = options.GetValueOrDefault("endpoint")
            ?? (Environment.GetEnvironmentVariable("HF_ENDPOINT") is { Length: > 0 } mirror ? mirror : manifest.Endpoint);
        var token = options.GetValueOrDefault("token") ?? (Environment.GetEnvironmentVariable("HF_TOKEN") is { Length: > 0 } t ? t : null);
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var endpointUri) || endpointUri.Scheme is not ("http" or "https"))
        {
            console.MarkupLineInterpolated($"[red]--endpoint must be an http(s) URL, got[/] {endpoint}");
            return 2;
        }
        console.MarkupLineInterpolated($"Pulling [bold]{manifest.Repository}[/]@{manifest.Revision} from {endpoint} into {modelsDir}");

        using var http = new HttpClient();
        http.Timeout = Timeout.InfiniteTimeSpan;
        http.DefaultRequestHeaders.UserAgent.ParseAdd("NewBie-models/1");
        var downloader = new ModelDownloader(http, manifest, modelsDir, endpoint, token);
        var results = new List<(ManifestFile File, string Outcome, bool Failed)>();

        async Task PullAll(Func<ManifestFile, (IProgress<DownloadProgress> Progress, Action Done)> track)
        {
            foreach (var file in manifest.Files)
            {
                var (progress, done) = track(file);
                try
                {
                    var outcome = await downloader.DownloadAsync(file, progress, cancellationToken);
                    results.Add(outcome switch
                    {
                        DownloadOutcome.Downloaded => (file, "downloaded", false),
                        DownloadOutcome.AlreadyPresent => (file, "already present", false),
                        _ when file.Required => (file, "not found in the repository (404)", true),
                        _ => (file, "not in the repository (optional, skipped)", false),
                    });
                }
                catch (ModelDownloadException e)
                {
                    results.Add((file, e.Message, true));
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    results.Add((file, $"interrupted ({e.Message}); run the command again to resume", true));
                }
                done();
            }
        }

        if (console.Profile.Capabilities.Interactive)
        {
            await console.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
                .StartAsync(context => PullAll(file =>
                {
                    var task = context.AddTask(file.Path, maxValue: file.Size ?? 1);
                    task.IsIndeterminate = file.Size is null;
                    return (new TaskProgress(task), task.StopTask);
                }));
        }
        else
        {
            // Logs and pipes get no live bars: a line per quarter of each file instead.
            await PullAll(file => (new LineProgress(console), () => { }));
        }

        foreach (var (file, outcome, failed) in results)
            Report(console, !failed, file.Path, outcome);
        var failures = results.Count(r => r.Failed);
        console.MarkupLine(failures == 0 ? "All files are in place. Run [bold]NewBie models verify[/] to check tensor names and shapes." : $"[red]{failures} file(s) failed.[/]");
        return failures == 0 ? 0 : 1;
    }

    private static async Task<int> VerifyAsync(ModelManifest manifest, string modelsDir, IAnsiConsole console, CancellationToken cancellationToken)
    {
        console.MarkupLineInterpolated($"Verifying {modelsDir} against {manifest.Repository}@{manifest.Revision}");
        var findings = await ModelVerifier.VerifyAsync(manifest, modelsDir, cancellationToken);
        foreach (var f in findings)
            Report(console, f.Ok, f.Subject, f.Detail);
        var failures = findings.Count(f => !f.Ok);
        console.MarkupLine(failures == 0 ? "[green]The model folder is complete and matches the architecture.[/]" : $"[red]{failures} check(s) failed.[/]");
        return failures == 0 ? 0 : 1;
    }

    private static void Report(IAnsiConsole console, bool ok, string subject, string detail)
    {
        if (ok) console.MarkupLineInterpolated($"[green]✓[/] {subject}: {detail}");
        else console.MarkupLineInterpolated($"[red]✗[/] {subject}: {detail}");
    }

    /// <summary>--name value and --name=value pairs; null on anything else.</summary>
    private static Dictionary<string, string>? ParseOptions(string[] args)
    {
        var known = new HashSet<string> { "endpoint", "token", "models-dir", "manifest" };
        var options = new Dictionary<string, string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) return null;
            var (name, value) = args[i].IndexOf('=') is > 2 and var eq ? (args[i][2..eq], args[i][(eq + 1)..]) : (args[i][2..], i + 1 < args.Length ? args[++i] : null);
            if (!known.Contains(name) || value is null) return null;
            options[name] = value;
        }
        return options;
    }

    private sealed class LineProgress(IAnsiConsole console) : IProgress<DownloadProgress>
    {
        private int _lastQuarter = -1;

        public void Report(DownloadProgress value)
        {
            var quarter = value.Total is > 0 and var total ? (int)(4 * value.Done / total) : 0;
            if (_lastQuarter < 0 && value.Done > 0) console.WriteLine($"{value.File.Path}: resuming at {value.Done} bytes");
            if (quarter <= _lastQuarter) return;
            _lastQuarter = quarter;
            var of = value.Total is { } t ? $" of {t}" : "";
            console.WriteLine($"{value.File.Path}: {quarter * 25}% ({value.Done}{of} bytes)");
        }
    }

    /// <summary>Updates the bar on the downloading thread, in order (Progress&lt;T&gt; would post elsewhere).</summary>
    private sealed class TaskProgress(ProgressTask task) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            if (value.Total is { } total && task.IsIndeterminate)
            {
                task.MaxValue = total;
                task.IsIndeterminate = false;
            }
            task.Value = value.Done;
        }
    }
}
