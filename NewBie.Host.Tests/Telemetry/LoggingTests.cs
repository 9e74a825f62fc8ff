using System.Text.Json;

namespace NewBie.Host.Tests.Telemetry;

public sealed class LoggingTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Serilog:MinimumLevel:Default"] = "Information" });

    public void Dispose() => _app.Dispose();

    private static readonly object Small = new { prompt = "1girl", width = 256, height = 256, steps = 2 };

    /// <summary>Every event of the compact JSON log files in the data folder, oldest first.</summary>
    private List<JsonElement> LogEvents()
    {
        var folder = Path.Combine(_app.DataDir, "logs");
        Assert.True(Directory.Exists(folder), $"no log folder {folder}");
        return Directory.GetFiles(folder, "newbie-*.json").Order()
            .SelectMany(file =>
            {
                // The sink holds the file open: share it.
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var reader = new StreamReader(stream);
                return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => JsonDocument.Parse(line).RootElement.Clone()).ToList();
            })
            .ToList();
    }

    private static string? Property(JsonElement e, string name) => e.TryGetProperty(name, out var p) ? p.ToString() : null;

    private async Task<List<JsonElement>> WaitForEventsAsync(Func<List<JsonElement>, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var events = LogEvents();
            if (done(events)) return events;
            if (DateTime.UtcNow > deadline) Assert.Fail($"log events so far:\n{string.Join("\n", events)}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Every_log_line_of_a_job_carries_its_JobId_and_UserId()
    {
        var alice = _app.ClientFor("alice");
        var good = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(good, "succeeded");
        _app.Engine.Failure = new InvalidOperationException("scripted failure");
        var bob = _app.ClientFor("bob");
        var bad = (await bob.SubmitAsync(Small)).Str("id");
        await bob.WaitForStatusAsync(bad, "failed");

        var events = await WaitForEventsAsync(e => e.Any(x => Property(x, "@mt")?.StartsWith("Job {JobId} failed", StringComparison.Ordinal) == true));

        var jobLines = events.Where(e => Property(e, "SourceContext") == "NewBie.Host.Jobs.GpuJob").ToList();
        Assert.Contains(jobLines, e => Property(e, "@mt")!.StartsWith("Running job", StringComparison.Ordinal) && Property(e, "JobId") == good);
        Assert.Contains(jobLines, e => Property(e, "@mt")!.Contains("succeeded", StringComparison.Ordinal) && Property(e, "JobId") == good);
        Assert.Contains(jobLines, e => Property(e, "@l") == "Error" && Property(e, "JobId") == bad && Property(e, "@x")!.Contains("scripted failure", StringComparison.Ordinal));
        Assert.All(jobLines, e => Assert.Equal(Property(e, "JobId") == good ? "alice" : "bob", Property(e, "UserId")));
        Assert.All(jobLines, e => Assert.Contains(Property(e, "JobId"), new[] { good, bad }));
    }

    [Fact]
    public async Task Request_log_line_names_the_caller_and_the_job_of_a_job_route()
    {
        var carol = _app.ClientFor("carol");
        var id = (await carol.SubmitAsync(Small)).Str("id");
        await carol.WaitForStatusAsync(id, "succeeded");

        var events = await WaitForEventsAsync(e => e.Any(x => Property(x, "RequestPath") == $"/v1/jobs/{id}"));

        var submit = Assert.Single(events, e => Property(e, "RequestPath") == "/v1/jobs" && Property(e, "RequestMethod") == "POST");
        Assert.Equal("carol", Property(submit, "UserId"));
        Assert.Equal("202", Property(submit, "StatusCode"));
        var status = events.First(e => Property(e, "RequestPath") == $"/v1/jobs/{id}");
        Assert.Equal("carol", Property(status, "UserId"));
        Assert.Equal(id, Property(status, "JobId"));
    }

    [Fact]
    public async Task Probes_and_scrapes_are_not_logged_at_information()
    {
        var client = _app.ClientFor();
        (await client.GetAsync("/healthz")).Dispose();
        (await _app.AdminClient().GetAsync("/metrics")).Dispose();
        (await client.GetAsync("/v1/jobs")).Dispose();

        var events = await WaitForEventsAsync(e => e.Any(x => Property(x, "RequestPath") == "/v1/jobs"));

        Assert.DoesNotContain(events, e => Property(e, "RequestPath") is "/healthz" or "/metrics");
    }
}
