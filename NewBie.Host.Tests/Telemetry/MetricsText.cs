using System.Diagnostics;
using System.Globalization;

namespace NewBie.Host.Tests.Telemetry;

/// <summary>Scrapes /metrics and reads the Prometheus text format: one sample per "series value" line.</summary>
public static class MetricsText
{
    public static async Task<string> ScrapeAsync(this HttpClient client)
    {
        using var response = await client.GetAsync("/metrics");
        Assert.True(response.IsSuccessStatusCode, $"/metrics answered {(int)response.StatusCode}");
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Series (name and labels exactly as written) to value.</summary>
    public static Dictionary<string, double> Samples(string text) => text.Split('\n')
        .Where(line => line.Length > 0 && !line.StartsWith('#'))
        .Select(line => (Series: line[..line.LastIndexOf(' ')], Value: line[(line.LastIndexOf(' ') + 1)..]))
        .ToDictionary(s => s.Series, s => double.Parse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture));

    /// <summary>
    /// Scrapes until every expected series has its value (10 s at most): a job's metrics are recorded just after
    /// its record says finished. Scraped again every 20 ms rather than woken: the gauges among the series (queue depth,
    /// memory plan) are computed at scrape time from their owners and record no measurement a listener could await.
    /// </summary>
    public static async Task<Dictionary<string, double>> WaitForAsync(this HttpClient client, Dictionary<string, double> expected)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var samples = Samples(await client.ScrapeAsync());
            var wrong = expected.Where(e => !samples.TryGetValue(e.Key, out var v) || v != e.Value).ToList();
            if (wrong.Count == 0) return samples;
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"unexpected: {string.Join(", ", wrong.Select(w => $"{w.Key} = {(samples.TryGetValue(w.Key, out var v) ? v : "absent")}, not {w.Value}"))}");
            await Task.Delay(20);
        }
    }
}

/// <summary>
/// promtool (Debian package "prometheus") on the PATH. Absent, its tests skip, unless NEWBIE_REQUIRE_PROMTOOL is set
/// (as in .ci/run, which installs it): then they fail.
/// </summary>
public sealed class PromtoolFactAttribute : FactAttribute
{
    public PromtoolFactAttribute()
    {
        if (Promtool.Path is null && Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_PROMTOOL") is not { Length: > 0 })
            Skip = "promtool is not on the PATH (apt-get install prometheus); .ci/run installs it";
    }
}

public static class Promtool
{
    public static string? Path { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "")
        .Split(System.IO.Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => System.IO.Path.Combine(dir, "promtool"))
        .FirstOrDefault(File.Exists);

    /// <summary>Runs "promtool check metrics" on <paramref name="text"/>: its exit code and everything it said.</summary>
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string text)
    {
        Assert.True(Path is not null, "promtool is required (NEWBIE_REQUIRE_PROMTOOL is set) but is not on the PATH");
        var start = new ProcessStartInfo(Path!, "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }
}
