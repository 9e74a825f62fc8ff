using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Models;
using NewBie.Host.Telemetry;
using NewBie.Pipeline;

namespace NewBie.Host.Tests.Telemetry;

public sealed class HealthTests
{
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 2 };

    /// <summary>/readyz once the engine, which loads in the background, has loaded or failed to (10 s at most): <paramref name="expected"/>.</summary>
    private static async Task<JsonElement> ReadyzAsync(HttpClient client, HttpStatusCode expected)
    {
        using var response = await client.GetAsync("/readyz?wait=10");
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == expected, $"/readyz answered {(int)response.StatusCode}: {body}");
        return body;
    }

    private static string[] Reasons(JsonElement body) => body.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()!).ToArray();

    [Fact]
    public async Task Readyz_is_ready_when_model_storage_and_queue_are_ok()
    {
        using var app = new NewBieApplication();

        var body = await ReadyzAsync(app.AdminClient(), HttpStatusCode.OK);

        Assert.Equal("ready", body.Str("status"));
        Assert.Empty(Reasons(body));
        foreach (var check in new[] { "model", "storage", "queue" })
            Assert.Equal("ok", body.GetProperty("checks").GetProperty(check).Str("status"));
        Assert.Equal("scripted", body.Str("model"));
        Assert.Equal(0, body.GetProperty("queued_jobs").GetInt32());
    }

    [Fact]
    public async Task Readyz_tells_a_caller_who_is_not_an_admin_only_ready_or_not()
    {
        using var app = new NewBieApplication(new() { ["Models:Model"] = "newbie-exp0.1" });
        await ReadyzAsync(app.AdminClient(), HttpStatusCode.ServiceUnavailable);

        foreach (var client in new[] { app.CreateClient(), app.ClientFor("alice") })
        {
            using var response = await client.GetAsync("/readyz");
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();

            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("""{"status":"not_ready"}""", body.GetRawText());
        }
    }

    [Fact]
    public async Task Healthz_answers_ok_while_not_ready()
    {
        using var app = new NewBieApplication(new() { ["Models:Model"] = "newbie-exp0.1" });
        var client = app.AdminClient();
        await ReadyzAsync(client, HttpStatusCode.ServiceUnavailable);

        using var response = await client.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("ok", (await response.Content.ReadFromJsonAsync<JsonElement>()).Str("status"));
    }

    [Fact]
    public async Task Readyz_reports_not_ready_when_the_model_is_not_loaded()
    {
        // The real weights are asked for and the models folder is empty: the engine cannot load.
        using var app = new NewBieApplication(new() { ["Models:Model"] = "newbie-exp0.1" });

        var body = await ReadyzAsync(app.AdminClient(), HttpStatusCode.ServiceUnavailable);

        Assert.Equal("not_ready", body.Str("status"));
        var reason = Assert.Single(Reasons(body));
        Assert.StartsWith("model: ", reason);
        Assert.Contains("--model newbie-exp0.1 but", reason);
        Assert.Equal(reason, body.Str("problem"));
        Assert.Equal("unavailable", body.Str("engine"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("outputs")]
    public async Task Readyz_reports_not_ready_when_storage_is_not_writable(string folder)
    {
        using var app = new NewBieApplication();
        var client = app.AdminClient();
        await ReadyzAsync(client, HttpStatusCode.OK);
        // The probe's file name taken by a directory: the write fails as on a read-only or full disk, even for root.
        var blocked = Path.Combine(app.DataDir, folder, StorageReadiness.ProbeFileName);
        Directory.CreateDirectory(blocked);

        var body = await ReadyzAsync(client, HttpStatusCode.ServiceUnavailable);

        var reason = Assert.Single(Reasons(body));
        Assert.StartsWith("storage: storage is not writable", reason);
        Assert.Contains(blocked, reason);
        Assert.Equal("failed", body.GetProperty("checks").GetProperty("storage").Str("status"));

        Directory.Delete(blocked);
        await ReadyzAsync(client, HttpStatusCode.OK);
    }

    [Fact]
    public async Task Readyz_reports_not_ready_when_the_queue_is_full()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxQueuedJobs"] = "1" });
        app.Engine.Hold();
        var client = app.AdminClient();
        var running = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(running, "running");
        await ReadyzAsync(client, HttpStatusCode.OK);
        await client.SubmitAsync(Small);

        var body = await ReadyzAsync(client, HttpStatusCode.ServiceUnavailable);

        Assert.Equal(["queue: the queue is full (1 of 1 queued)"], Reasons(body));
        Assert.Equal(1, body.GetProperty("queued_jobs").GetInt32());
        Assert.Equal(1, body.GetProperty("max_queued_jobs").GetInt32());
    }

    [Fact]
    public async Task Readyz_wait_holds_the_answer_while_the_model_loads_and_gives_it_once_loaded()
    {
        var load = new HeldLoad();
        using var app = new NewBieApplication(engineFactory: load);
        var client = app.AdminClient();
        using var loading = await client.GetAsync("/readyz");

        var held = client.GetAsync("/readyz?wait=30");
        load.Finish();
        using var ready = await held;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, loading.StatusCode);
        Assert.Equal("loading", (await loading.Content.ReadFromJsonAsync<JsonElement>()).Str("engine"));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", (await ready.Content.ReadFromJsonAsync<JsonElement>()).Str("engine"));
    }

    [Fact]
    public async Task Readyz_wait_that_runs_out_while_the_model_loads_answers_not_ready()
    {
        using var app = new NewBieApplication(engineFactory: new HeldLoad());

        using var response = await app.AdminClient().GetAsync("/readyz?wait=1");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("loading", (await response.Content.ReadFromJsonAsync<JsonElement>()).Str("engine"));
    }

    /// <summary>An engine whose loading lasts until <see cref="Finish"/> (or the server stops).</summary>
    internal sealed class HeldLoad : IEngineFactory
    {
        private readonly ManualResetEventSlim _finished = new();

        public void Finish() => _finished.Set();

        public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken)
        {
            _finished.Wait(cancellationToken);
            return new ScriptedEngine();
        }
    }
}

/// <summary>Refused waits change nothing: one server (its model still loading) for the class.</summary>
public sealed class ReadyzWaitParameterTests(ReadyzWaitParameterTests.App fixture) : IClassFixture<ReadyzWaitParameterTests.App>
{
    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new(engineFactory: new HealthTests.HeldLoad());

        public void Dispose() => Server.Dispose();
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("61")]
    [InlineData("")]
    public async Task Readyz_wait_outside_0_to_60_seconds_is_an_invalid_parameter(string wait)
    {
        using var response = await fixture.Server.AdminClient().GetAsync($"/readyz?wait={wait}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ProblemAsync();
        Assert.Equal(("invalid_parameter", "wait"), (problem.Str("code"), problem.Str("field")));
    }
}
