using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Accounts;
using NewBie.Host.Admin;
using NewBie.Host.HangfireStorage;
using NewBie.Host.HangfireStorage.Postgres;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>The server with Storage:Provider=postgres: its GPU worker claims from the PostgreSQL fair queue, and the queue admin acts on it.</summary>
public sealed class PostgresQueueAppTests : IDisposable
{
    private readonly PostgresNodes _nodes = new();

    public void Dispose() => _nodes.Dispose();

    [SkippableFact]
    public async Task Server_on_postgres_runs_jobs_in_fair_order_with_pause_and_move_to_front()
    {
        using var app = new NewBieApplication(new Dictionary<string, string?>
        {
            ["Storage:Provider"] = "postgres",
            ["ConnectionStrings:Postgres"] = _nodes.Database.ConnectionString,
        });
        app.Engine.Hold();
        var admin = app.ClientWithKey("boss", Roles.Admin);
        var alice = app.ClientWithKey("alice");
        var a = (await alice.SubmitAsync(Small("a"))).Str("id");
        await alice.WaitForStatusAsync(a, "running");
        Assert.IsType<PostgresFairQueue>(app.Service<IFairQueue>());

        using var paused = await admin.PostAsync("/v1/admin/queue/pause", null);
        var b = (await alice.SubmitAsync(Small("b"))).Str("id");
        var c = (await admin.SubmitAsync(new { prompt = "c", width = 256, height = 256, steps = 2, priority = "high" })).Str("id");
        var d = (await alice.SubmitAsync(Small("d"))).Str("id");
        using var moved = await admin.PostAsync($"/v1/admin/jobs/{d}/front", null);
        app.Engine.Release();
        await alice.WaitForStatusAsync(a, "succeeded");
        var queue = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/queue");

        Assert.Equal((HttpStatusCode.OK, HttpStatusCode.NoContent), (paused.StatusCode, moved.StatusCode));
        Assert.True(queue.GetProperty("paused").GetBoolean());
        var jobs = queue.GetProperty("jobs").EnumerateArray().ToList();
        Assert.Equal(new[] { d, c, b }, jobs.Select(j => j.Str("id")));
        Assert.Equal(new[] { 1, 2, 3 }, jobs.Select(j => j.GetProperty("position").GetInt32()));
        Assert.Equal(3, (await alice.GetJobAsync(b)).GetProperty("queue_position").GetInt32());

        using var resumed = await admin.PostAsync("/v1/admin/queue/resume", null);
        foreach (var id in new[] { b, c, d }) await admin.WaitForStatusAsync(id, "succeeded");

        Assert.Equal(new[] { "a", "d", "c", "b" }, app.Engine.RunOrder);
        Assert.False(app.Service<QueueAdmin>().IsPaused);
    }

    private static object Small(string prompt) => new { prompt, width = 256, height = 256, steps = 2 };
}
