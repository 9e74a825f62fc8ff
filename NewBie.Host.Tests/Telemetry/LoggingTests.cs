using System.Text.Json;

namespace NewBie.Host.Tests.Telemetry;

public sealed class LoggingTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Serilog:MinimumLevel:Default"] = "Information" });

    public void Dispose() => _app.Dispose();

    private static readonly object Small = new { prompt = "1girl", width = 256, height = 256, steps = 2 };

    private static string? Property(JsonElement e, string name) => e.TryGetProperty(name, out var p) ? p.ToString() : null;

    private Task<List<JsonElement>> WaitForEventsAsync(Func<List<JsonElement>, bool> done) =>
        LogFiles.WaitForAsync(_app.DataDir, done, TimeSpan.FromSeconds(10));

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
