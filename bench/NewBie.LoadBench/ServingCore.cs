using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace NewBie.LoadBench;

/// <summary>
/// Issue 15's serving-core figures with real load generators (Debian's wrk and hey) on loopback: reads of a queued and a
/// finished job, list pages and durable submits at 1,000 and 10,000 queued (GPU queue paused), and 1,000 open event
/// streams while 20 jobs run.
/// </summary>
internal static partial class ServingCore
{
    private static readonly string[] Settings =
    [
        "Jobs:MaxQueuedJobs=30000", "Accounts:Defaults:MaxQueuedJobs=30000", "Accounts:Defaults:ImagesPerDay=10000000",
        "Accounts:RateLimits:KeyBurst=1000000", "Accounts:RateLimits:GlobalPerSecond=1000000", "Accounts:RateLimits:GlobalPerHour=100000000",
        "Limits:MaxEventStreamsPerUser=100",
        "Serilog:MinimumLevel:Default=Warning", "Serilog:MinimumLevel:Override:Microsoft.Hosting.Lifetime=Information", "Logs:JsonFile=false",
    ];

    private const string Body = """{"prompt":"<character_1><n>bench</n></character_1>","width":256,"height":256,"steps":4}""";

    public static async Task<string> ReadsAsync(TextWriter log)
    {
        Tools.Require("wrk", "hey");
        await using var d = await Deployment.StartAsync(Scenarios.SeedUsers, Settings);
        var owner = d.Users[0];
        var finished = (await owner.SubmitAsync(BenchClient.Job("<character_1><n>done</n></character_1>", 1))).Id!;
        await owner.WaitFinishedAsync([finished], TimeSpan.FromMinutes(2));
        await d.Admin.PostAsync("/v1/admin/queue/pause");

        var table = new StringBuilder();
        table.AppendLine("GPU queue paused, jobs queued round robin by 10 users; wrk: 2 threads, 32 connections, 10 s, keep-alive; hey: 16 clients, 2,000 POSTs of a 256×256 4-step job (each 202 = on disk).");
        table.AppendLine();
        table.AppendLine("| queued | `GET /v1/jobs/{id}` last queued: req/s, p99 | same run, finished job: req/s, p99 | queued ÷ finished | `GET /v1/jobs?limit=20`: req/s, p99 | durable `POST /v1/jobs` ×16: req/s, p99 | non-2xx |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        var queued = 0;
        // NEWBIE_BENCH_DEPTHS=1000,3000 measures shallower backlogs where filling 10,000 would take too long (a loaded machine).
        var depths = (Environment.GetEnvironmentVariable("NEWBIE_BENCH_DEPTHS") ?? "1000,10000").Split(',').Select(d => int.Parse(d, CultureInfo.InvariantCulture));
        var warm = false;
        foreach (var depth in depths)
        {
            queued += await FillAsync(d, depth - queued, log);
            var last = await LastQueuedAsync(d);
            // Deployment names its users user0, user1, … in the order of d.Users.
            var lastOwner = d.Users[int.Parse(last.Owner[4..], CultureInfo.InvariantCulture)];
            log.WriteLine($"{queued} queued; last in claim order {last.Id} of {last.Owner}");
            // Unmeasured, as the deployment's warm-up job: until here the server had served only POSTs, and the first
            // run of reads ran at half the rate of the same reads a minute later (tiered JIT: with
            // DOTNET_TieredCompilation=0 the first queued and finished reads ran alike, 11,557 and 10,870 /s).
            if (!warm) await Tools.WrkAsync($"{d.Server.Url}/v1/jobs/{last.Id}", lastOwner.Key!, TextWriter.Null, seconds: 5);
            warm = true;
            var queuedRead = await Tools.WrkAsync($"{d.Server.Url}/v1/jobs/{last.Id}", lastOwner.Key!, log);
            var finishedRead = await Tools.WrkAsync($"{d.Server.Url}/v1/jobs/{finished}", owner.Key!, log);
            var list = await Tools.WrkAsync($"{d.Server.Url}/v1/jobs?limit=20", owner.Key!, log);
            var post = await Tools.HeyPostAsync($"{d.Server.Url}/v1/jobs", owner.Key!, Body, requests: 2000, clients: 16, log);
            table.AppendLine($"| {queued:N0} | {queuedRead.PerSecond:N0}, {queuedRead.P99Ms:F1} ms | {finishedRead.PerSecond:N0}, {finishedRead.P99Ms:F1} ms | " +
                $"{queuedRead.PerSecond / finishedRead.PerSecond:F2} | {list.PerSecond:N0}, {list.P99Ms:F1} ms | {post.PerSecond:N0}, {post.P99Ms:F1} ms | " +
                $"{queuedRead.Errors + finishedRead.Errors + list.Errors + post.Errors} |");
            queued += post.Ok;
        }
        return table.ToString();
    }

    public static async Task<string> StreamsAsync(TextWriter log)
    {
        Tools.Require("hey");
        const int jobsPerUser = 2, streamsPerUser = 100, steps = 8;
        // Runs with and without streams alternate (and swap their order each round) so that the other engineers' load on
        // these shared cores, which drifts over minutes, falls on both alike; the medians are compared.
        var rounds = int.TryParse(Environment.GetEnvironmentVariable("NEWBIE_BENCH_STREAM_ROUNDS"), out var r) && r > 0 ? r : 3;
        await using var d = await Deployment.StartAsync(Scenarios.SeedUsers, Settings);
        var table = new StringBuilder();
        table.AppendLine($"20 jobs (2 per user, 256×256, {steps} steps) submitted with the GPU queue paused, then resumed; run time = last finished_at − first started_at from the records. " +
            $"With streams: {streamsPerUser * Scenarios.SeedUsers:N0} `GET /v1/jobs/{{id}}/events` open before the resume ({streamsPerUser} per user, 50 per job), read by the bench process " +
            "on the same 2 cores over raw sockets (`EventStreamReader`: HTTP/1.0, frames split on their blank line, only the step number parsed). " +
            $"`/healthz` p95 by hey (2 clients) for the whole run. {rounds} rounds on one server, each a run without and a run with streams, in alternating order " +
            "(`NEWBIE_BENCH_STREAM_ROUNDS`), after one uncounted warm-up run with streams; the last rows compare the medians.");
        table.AppendLine();
        table.AppendLine("| round | run | streams | steps seen (of streams × steps) | every stream saw every step | run time | `/healthz` p50, p95 | `/healthz` req/s |");
        table.AppendLine("|---|---|---|---|---|---|---|---|");
        var results = new List<(bool WithStreams, double Seconds, bool AllSteps, LoadResult Health)>();
        // Not counted: a server's first 20-job runs are its slowest (runs of 10.5 and 11.2 s against 7.3–8.4 s later; with
        // this warm-up, 11.4 s then 10.1 s), and the first always fell on round 1's run without streams. The alternation
        // spreads what slowness is left over both kinds of run.
        var (warmSeconds, _, _) = await StreamRunAsync(d, withStreams: true, jobsPerUser, streamsPerUser, steps, log);
        log.WriteLine($"  warm-up with streams (not counted): {warmSeconds:F2} s");
        for (var round = 1; round <= rounds; round++)
            foreach (var withStreams in round % 2 == 1 ? new[] { false, true } : [true, false])
            {
                var (seconds, reads, healthz) = await StreamRunAsync(d, withStreams, jobsPerUser, streamsPerUser, steps, log);
                var allSteps = reads.All(s => s.SawEveryStep(steps));
                var stepsSeen = reads.Sum(s => s.Steps);
                results.Add((withStreams, seconds, allSteps, healthz));
                log.WriteLine($"  round {round} {(withStreams ? "with" : "without")}: {seconds:F2} s, steps seen {stepsSeen}/{reads.Length * steps} " +
                    $"(not opened {reads.Count(s => !s.Opened)}, no done {reads.Count(s => s.Opened && !s.Done)}, out of order {reads.Count(s => !s.InOrder)}), " +
                    $"healthz p50 {healthz.P50Ms:F1} ms p95 {healthz.P95Ms:F1} ms");
                table.AppendLine($"| {round} | {(withStreams ? "with streams" : "without")} | {reads.Length:N0} | {(withStreams ? $"{stepsSeen:N0} of {reads.Length * steps:N0}" : "–")} | " +
                    $"{(withStreams ? (allSteps ? "yes" : "NO") : "–")} | {seconds:F2} s | {healthz.P50Ms:F1} ms, {healthz.P95Ms:F1} ms | {healthz.PerSecond:N0} |");
            }
        var without = Median(results.Where(x => !x.WithStreams).Select(x => x.Seconds));
        var with = Median(results.Where(x => x.WithStreams).Select(x => x.Seconds));
        var everyStep = results.Where(x => x.WithStreams).All(x => x.AllSteps);
        table.AppendLine($"| median | without | 0 | – | – | {without:F2} s | {Median(results.Where(x => !x.WithStreams).Select(x => x.Health.P50Ms)):F1} ms, " +
            $"{Median(results.Where(x => !x.WithStreams).Select(x => x.Health.P95Ms)):F1} ms | |");
        table.AppendLine($"| median | with streams | {streamsPerUser * Scenarios.SeedUsers:N0} | | {(everyStep ? "yes, every run" : "NO")} | {with:F2} s ({with / without * 100 - 100:+0.0;-0.0;0} %) | " +
            $"{Median(results.Where(x => x.WithStreams).Select(x => x.Health.P50Ms)):F1} ms, {Median(results.Where(x => x.WithStreams).Select(x => x.Health.P95Ms)):F1} ms | |");
        return table.ToString();
    }

    private static async Task<(double Seconds, StreamRead[] Reads, LoadResult Health)> StreamRunAsync(
        Deployment d, bool withStreams, int jobsPerUser, int streamsPerUser, int steps, TextWriter log)
    {
        await d.Admin.PostAsync("/v1/admin/queue/pause");
        var ids = new List<(BenchClient User, string Id)>();
        foreach (var user in d.Users)
            for (var j = 0; j < jobsPerUser; j++)
                ids.Add((user, (await user.SubmitAsync(BenchClient.Job($"<character_1><n>s{j}</n></character_1>", j, steps))).Id!));
        var streams = new List<Task<StreamRead>>();
        if (withStreams)
        {
            var opened = new CountdownEvent(streamsPerUser * Scenarios.SeedUsers);
            foreach (var (user, id) in ids)
                for (var s = 0; s < streamsPerUser / jobsPerUser; s++)
                    streams.Add(EventStreamReader.ReadAsync(d.Server.Url, user.Key!, id, steps, opened));
            // A stream not yet open when the queue resumes would start late and miss steps through no fault of the server.
            if (!await Task.Run(() => opened.Wait(TimeSpan.FromMinutes(2))))
                throw new TimeoutException($"{opened.CurrentCount} of {streams.Count} event streams were not answered within 2 min");
            log.WriteLine($"{streams.Count} streams answered");
        }
        using var stop = new CancellationTokenSource();
        var health = Tools.HeyDurationAsync($"{d.Server.Url}/healthz", clients: 2, stop.Token, log);
        await d.Admin.PostAsync("/v1/admin/queue/resume");
        var done = await d.Admin.WaitFinishedAsync(ids.Select(i => i.Id).ToList(), TimeSpan.FromMinutes(10));
        var reads = await Task.WhenAll(streams);
        stop.Cancel();
        var healthz = await health;
        var runs = done.Values.Where(j => ids.Any(i => i.Id == j.Id)).ToList();
        return ((runs.Max(j => j.FinishedAt!.Value) - runs.Min(j => j.StartedAt!.Value)).TotalSeconds, reads, healthz);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static async Task<int> FillAsync(Deployment d, int count, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var next = -1;
        var accepted = 0;
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
                if ((await d.Users[i % d.Users.Count].SubmitAsync(BenchClient.Job("<character_1><n>fill</n></character_1>", i))).Id is not null)
                    Interlocked.Increment(ref accepted);
        }));
        log.WriteLine($"queued {accepted} in {clock.Elapsed.TotalSeconds:F1} s ({accepted / clock.Elapsed.TotalSeconds:F0}/s)");
        return accepted;
    }

    private static async Task<(string Id, string Owner)> LastQueuedAsync(Deployment d)
    {
        var queue = await d.Admin.Http.GetFromJsonAsync<JsonElement>($"{d.Server.Url}/v1/admin/queue");
        var last = queue.GetProperty("jobs").EnumerateArray().Last();
        return (last.GetProperty("id").GetString()!, last.GetProperty("user").GetString()!);
    }
}

internal sealed record LoadResult(double PerSecond, double P99Ms, double P95Ms, int Ok, int Errors, double P50Ms = double.NaN);

/// <summary>wrk and hey (Debian packages) as child processes; their text output parsed for rate and latency.</summary>
internal static partial class Tools
{
    public static void Require(params string[] tools)
    {
        foreach (var tool in tools)
            if (!File.Exists($"/usr/bin/{tool}"))
                throw new InvalidOperationException($"{tool} is not installed: apt-get install -y wrk hey");
    }

    public static async Task<LoadResult> WrkAsync(string url, string key, TextWriter log, int seconds = 10)
    {
        var output = await RunAsync("wrk", ["-t2", "-c32", $"-d{seconds}s", "--latency", "-H", $"Authorization: Bearer {key}", url]);
        log.WriteLine(output);
        var rate = Number(WrkRate().Match(output));
        var p99 = WrkMs(WrkP99().Match(output));
        var errors = WrkNon2xx().Match(output) is { Success: true } m ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new LoadResult(rate, p99, double.NaN, 0, errors);
    }

    public static async Task<LoadResult> HeyPostAsync(string url, string key, string body, int requests, int clients, TextWriter log)
    {
        var output = await RunAsync("hey", ["-n", requests.ToString(CultureInfo.InvariantCulture), "-c", clients.ToString(CultureInfo.InvariantCulture),
            "-m", "POST", "-T", "application/json", "-H", $"Authorization: Bearer {key}", "-d", body, url]);
        log.WriteLine(output);
        return Hey(output, "202");
    }

    /// <summary>POSTs the file's bytes (<c>hey -D</c>); returns the answers per status, "error" for failed requests.</summary>
    public static async Task<string> HeyPostFileAsync(string url, string? key, string bodyFile, int requests, int clients, TextWriter log)
    {
        string[] auth = key is null ? [] : ["-H", $"Authorization: Bearer {key}"];
        var output = await RunAsync("hey", ["-n", requests.ToString(CultureInfo.InvariantCulture), "-c", clients.ToString(CultureInfo.InvariantCulture),
            "-m", "POST", "-T", "application/json", .. auth, "-D", bodyFile, url]);
        log.WriteLine(output);
        var answers = HeyStatus().Matches(output).Select(m => $"{m.Groups[1].Value}×{m.Groups[2].Value}").ToList();
        var errors = HeyErrorLine().Matches(output).Sum(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        if (errors > 0) answers.Add($"error×{errors}");
        return string.Join(" ", answers);
    }

    public static async Task<LoadResult> HeyDurationAsync(string url, int clients, CancellationToken stop, TextWriter log)
    {
        // hey -z runs for a duration; it is stopped (SIGINT) when the measured run ends and prints its summary then.
        var start = new ProcessStartInfo("hey") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-z", "30m", "-c", clients.ToString(CultureInfo.InvariantCulture), url }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        try { await Task.Delay(Timeout.Infinite, stop); } catch (OperationCanceledException) { }
        Signal(process.Id);
        await process.WaitForExitAsync(CancellationToken.None);
        var output = await stdout;
        log.WriteLine(output);
        return Hey(output, "200");
    }

    private static LoadResult Hey(string output, string okStatus)
    {
        var rate = Number(HeyRate().Match(output));
        var p99 = Number(HeyPercentile("99").Match(output)) * 1000;
        var p95 = Number(HeyPercentile("95").Match(output)) * 1000;
        var p50 = Number(HeyPercentile("50").Match(output)) * 1000;
        var ok = 0;
        var errors = 0;
        foreach (Match m in HeyStatus().Matches(output))
        {
            var n = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (m.Groups[1].Value == okStatus) ok += n;
            else errors += n;
        }
        return new LoadResult(rate, p99, p95, ok, errors, p50);
    }

    private static void Signal(int pid)
    {
        using var kill = Process.Start("kill", ["-INT", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static async Task<string> RunAsync(string tool, string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return await stdout + await stderr;
    }

    private static double Number(Match m) => m.Success ? double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;

    private static double WrkMs(Match m) => !m.Success ? double.NaN : m.Groups[2].Value switch
    {
        "us" => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) / 1000,
        "s" => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1000,
        _ => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
    };

    private static Regex HeyPercentile(string p) => new($@"\b{p}%+ in ([0-9.]+) secs");

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex WrkRate();

    [GeneratedRegex(@"99%\s+([0-9.]+)(us|ms|s)\b")]
    private static partial Regex WrkP99();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex WrkNon2xx();

    [GeneratedRegex(@"Requests/sec:\s+([0-9.]+)")]
    private static partial Regex HeyRate();

    [GeneratedRegex(@"\[(\d{3})\]\s+(\d+) responses")]
    private static partial Regex HeyStatus();

    // hey's "Error distribution:" lines: "  [12]\tPost ...: connection reset by peer".
    [GeneratedRegex(@"^\s+\[(\d+)\]\s+(?:Post|Get)\b", RegexOptions.Multiline)]
    private static partial Regex HeyErrorLine();
}
