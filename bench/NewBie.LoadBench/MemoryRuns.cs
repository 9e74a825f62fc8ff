using System.Globalization;
using System.Text;

namespace NewBie.LoadBench;

/// <summary>
/// Issue 16's "memory returns after a burst": the server's resident memory (VmRSS of the child process) before, at the
/// peak of, and after bursts of oversized and large bodies sent by hey, idle afterwards.
/// </summary>
internal static class MemoryRuns
{
    public const int Requests = 200, Clients = 16, HugeBytes = 25 * 1024 * 1024, LargeBytes = 60 * 1024;

    public static async Task<string> AfterBurstAsync(TextWriter log)
    {
        Tools.Require("hey");
        var dir = Directory.CreateTempSubdirectory("newbie-memory-").FullName;
        try
        {
            var huge = Path.Combine(dir, "huge.json");
            var large = Path.Combine(dir, "large.json");
            // Valid JSON up to its last field, which has the wrong type: the whole body is read and parsed before the 400.
            await File.WriteAllTextAsync(huge, "{\"prompt\":\"" + new string('a', HugeBytes - 40) + "\",\"seed\":\"x\"}");
            await File.WriteAllTextAsync(large, "{\"prompt\":\"" + new string('a', LargeBytes - 40) + "\",\"seed\":\"x\"}");

            var table = new StringBuilder();
            table.AppendLine($"hey: {Requests} POSTs at concurrency {Clients} for each of: a {HugeBytes / (1024 * 1024)} MB body to `/v1/auth/login` without credentials, " +
                $"the same with a user's key to `/v1/jobs`, and a {LargeBytes / 1024} KiB JSON body (under `Limits:MaxBodyBytes`, parsed to the end) with the key to `/v1/jobs`. " +
                "RSS is the child server's VmRSS from /proc/PID/status: before (after two jobs and a 10 s rest), the highest sampled every 50 ms during the bursts, and 10 s and 30 s after the last one.");
            table.AppendLine();
            table.AppendLine("| server | answers (anonymous 25 MB; keyed 25 MB; keyed 60 KiB) | RSS before | RSS peak | RSS +10 s | RSS +30 s | returned (peak − +30 s) ÷ (peak − before) |");
            table.AppendLine("|---|---|---|---|---|---|---|");
            for (var i = 0; i < Variants.Length; i++)
                table.AppendLine(await OneAsync(Variants[i].Name, Variants[i].Settings, Variants[i].Environment, Path.Combine(dir, $"data{i}"), huge, large, log));
            return table.ToString();
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>The server as configured (the idle trim on), without the trim, and without it on workstation GC, in one run.</summary>
    private static readonly (string Name, string[] Settings, Dictionary<string, string> Environment)[] Variants =
    [
        ("as configured", [], []),
        ("Server:IdleMemoryTrimSeconds=0", ["Server:IdleMemoryTrimSeconds=0"], []),
        ("trim off, workstation GC", ["Server:IdleMemoryTrimSeconds=0"], new() { ["DOTNET_gcServer"] = "0" }),
    ];

    private static async Task<string> OneAsync(string name, string[] settings, Dictionary<string, string> environment, string dataDir, string huge, string large, TextWriter log)
    {
        var key = await ServerProcess.CreateUserAsync(dataDir, "user0");
        await using var server = await ServerProcess.StartAsync(dataDir, [.. FaultRuns.OpenLimits, .. settings], environment: environment);
        await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
        using (var client = new BenchClient(() => server.Url, key))
        {
            var ids = new List<string>();
            for (var i = 0; i < 2; i++) ids.Add((await client.SubmitAsync(BenchClient.Job("<character_1><n>warm</n></character_1>", i, steps: 2))).Id!);
            await client.WaitFinishedAsync(ids, TimeSpan.FromMinutes(3));
        }
        await Task.Delay(TimeSpan.FromSeconds(10));
        var before = Rss(server.Process.Id);

        using var stop = new CancellationTokenSource();
        var peak = before;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, Rss(server.Process.Id));
                try { await Task.Delay(50, stop.Token); } catch (OperationCanceledException) { }
            }
        });
        var answers = new List<string>
        {
            await Tools.HeyPostFileAsync($"{server.Url}/v1/auth/login", null, huge, Requests, Clients, log),
            await Tools.HeyPostFileAsync($"{server.Url}/v1/jobs", key, huge, Requests, Clients, log),
            await Tools.HeyPostFileAsync($"{server.Url}/v1/jobs", key, large, Requests, Clients, log),
        };
        await stop.CancelAsync();
        await sampler;
        peak = Math.Max(peak, Rss(server.Process.Id));
        await Task.Delay(TimeSpan.FromSeconds(10));
        var after10 = Rss(server.Process.Id);
        await Task.Delay(TimeSpan.FromSeconds(20));
        var after30 = Rss(server.Process.Id);
        var returned = peak > before ? (double)(peak - after30) / (peak - before) : 1;
        log.WriteLine($"  {name}: RSS before {Mib(before)}, peak {Mib(peak)}, +10 s {Mib(after10)}, +30 s {Mib(after30)}");
        return $"| {name} | {string.Join("; ", answers)} | {Mib(before)} | {Mib(peak)} | {Mib(after10)} | {Mib(after30)} | {returned:P0} |";
    }

    /// <summary>Resident memory of a process in bytes (VmRSS, Linux).</summary>
    public static long Rss(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;

    private static string Mib(long bytes) => $"{bytes / (1024.0 * 1024):F0} MiB";
}
