using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>Job bodies for the server tests; each test uses its own event names.</summary>
public static class ServerJobs
{
    private static readonly ConcurrentDictionary<string, TaskCompletionSource> Events = new();

    public static TaskCompletionSource Event(string name) => Events.GetOrAdd(name, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public static void Mark(string name) => Event(name).TrySetResult();

    public static void Block(string started, string gate)
    {
        Mark(started);
        Event(gate).Task.Wait(TimeSpan.FromSeconds(30));
    }

    public static async Task WaitForCancel(string started, string canceled, CancellationToken token)
    {
        Mark(started);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(30), token);
        }
        catch (OperationCanceledException)
        {
            Mark(canceled);
            throw;
        }
    }
}

/// <summary>
/// Tests that run a Hangfire server or dashboard share Hangfire's static configuration (log provider, filters), so
/// they run alone, never beside each other nor beside other tests of the assembly.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class HangfireServerCollection
{
    public const string Name = "Hangfire server";
}

/// <summary>LiteDbStorage under a real Hangfire server, scheduler and dashboard.</summary>
[Collection(HangfireServerCollection.Name)]
public sealed class LiteDbStorageServerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
    private readonly TempFolder _folder = new();
    private readonly LiteDbStorage _storage;
    private readonly BackgroundJobClient _client;
    private readonly string _run = Guid.NewGuid().ToString("N");

    public LiteDbStorageServerTests()
    {
        _storage = new LiteDbStorage(Path.Combine(_folder.Path, "hangfire.db"), new LiteDbStorageOptions { QueuePollInterval = TimeSpan.FromSeconds(1) });
        _client = new BackgroundJobClient(_storage);
    }

    public void Dispose()
    {
        _storage.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public async Task Enqueued_job_runs_to_succeeded()
    {
        using var server = StartServer();
        var id = _client.Enqueue(() => ServerJobs.Mark(Name("done")));

        await ServerJobs.Event(Name("done")).Task.WaitAsync(Patience);

        await WaitForState(id, SucceededState.StateName);
        Assert.Equal(1, _storage.GetMonitoringApi().SucceededListCount());
        Assert.Empty(_storage.GetFetchedJobIds("default"));
        Assert.Empty(_storage.GetFairQueue("default"));
    }

    [Fact]
    public async Task Deleted_queued_job_never_runs()
    {
        using var server = StartServer();
        var blocker = _client.Enqueue(() => ServerJobs.Block(Name("blocker-started"), Name("gate")));
        await ServerJobs.Event(Name("blocker-started")).Task.WaitAsync(Patience);
        var target = _client.Enqueue(() => ServerJobs.Mark(Name("target")));

        Assert.True(_client.Delete(target));
        ServerJobs.Mark(Name("gate"));
        await WaitForState(blocker, SucceededState.StateName);
        _client.Enqueue(() => ServerJobs.Mark(Name("after")));
        await ServerJobs.Event(Name("after")).Task.WaitAsync(Patience);

        Assert.False(ServerJobs.Event(Name("target")).Task.IsCompleted);
        Assert.Equal(DeletedState.StateName, _storage.GetConnection().GetStateData(target).Name);
    }

    [Fact]
    public async Task Delete_of_running_job_cancels_its_token()
    {
        using var server = StartServer();
        var id = _client.Enqueue(() => ServerJobs.WaitForCancel(Name("started"), Name("canceled"), CancellationToken.None));
        await ServerJobs.Event(Name("started")).Task.WaitAsync(Patience);
        var clock = Stopwatch.StartNew();

        Assert.True(_client.Delete(id));

        await ServerJobs.Event(Name("canceled")).Task.WaitAsync(Patience);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"cancellation took {clock.Elapsed}");
        Assert.Equal(DeletedState.StateName, _storage.GetConnection().GetStateData(id).Name);
    }

    [Fact]
    public async Task Recurring_job_fires()
    {
        using var server = StartServer();
        var manager = new RecurringJobManager(_storage);

        manager.AddOrUpdate(Name("recurring"), Job.FromExpression(() => ServerJobs.Mark(Name("fired"))), "* * * * * *");

        await ServerJobs.Event(Name("fired")).Task.WaitAsync(Patience);
        manager.RemoveIfExists(Name("recurring"));
    }

    [Fact]
    public async Task Continuation_runs_after_its_parent()
    {
        using var server = StartServer();
        var parent = _client.Enqueue(() => ServerJobs.Mark(Name("parent")));
        var child = _client.ContinueJobWith(parent, () => ServerJobs.Mark(Name("child")));

        await ServerJobs.Event(Name("child")).Task.WaitAsync(Patience);

        Assert.True(ServerJobs.Event(Name("parent")).Task.IsCompleted);
        await WaitForState(child, SucceededState.StateName);
    }

    [Fact]
    public async Task Gpu_worker_takes_jobs_in_fair_order()
    {
        var ids = new List<string>();
        foreach (var user in new[] { "A", "A", "A", "B" })
        {
            var n = ids.Count;
            ids.Add(_client.Create(Job.FromExpression(() => ServerJobs.Mark(Name($"fair-{n}"))), new EnqueuedState("gpu"),
                new Dictionary<string, object> { [FairQueueParameters.UserId] = user }));
        }
        var predicted = _storage.GetFairQueue("gpu").Select(e => e.JobId).ToList();
        Assert.Equal(new[] { ids[0], ids[3], ids[1], ids[2] }, predicted);

        using var server = StartServer();
        foreach (var n in Enumerable.Range(0, 4)) await ServerJobs.Event(Name($"fair-{n}")).Task.WaitAsync(Patience);

        var started = ids.Select(id => _storage.GetMonitoringApi().JobDetails(id).History.Single(h => h.StateName == ProcessingState.StateName).CreatedAt).ToList();
        Assert.Equal(predicted, ids.Zip(started).OrderBy(p => p.Second).Select(p => p.First));
    }

    [Fact]
    public async Task Server_runs_the_expiration_manager()
    {
        using (var connection = _storage.GetConnection())
        using (var tx = connection.CreateWriteTransaction())
        {
            tx.IncrementCounter(Name("short-lived"), TimeSpan.FromMilliseconds(1));
            tx.Commit();
        }
        await Task.Delay(20);

        using var server = StartServer();

        var clock = Stopwatch.StartNew();
        using var reader = _storage.GetConnection();
        while (((Hangfire.Storage.JobStorageConnection)reader).GetCounter(Name("short-lived")) != 0)
        {
            if (clock.Elapsed > Patience) Assert.Fail("the expired counter was never deleted");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Dashboard_pages_render()
    {
        var queued = _client.Create(Job.FromExpression(() => ServerJobs.Mark(Name("never"))), new EnqueuedState("gpu"),
            new Dictionary<string, object> { [FairQueueParameters.UserId] = "alice" });
        _client.Schedule(() => ServerJobs.Mark(Name("later")), TimeSpan.FromHours(1));
        new RecurringJobManager(_storage).AddOrUpdate(Name("hourly"), Job.FromExpression(() => ServerJobs.Mark(Name("hourly"))), Cron.Hourly());
        using (var connection = _storage.GetConnection())
        {
            connection.AnnounceServer("dashboard-test-server", new Hangfire.Server.ServerContext { WorkerCount = 1, Queues = ["gpu"] });
        }

        using var host = await new HostBuilder()
            .ConfigureWebHost(web => web
                .UseTestServer()
                // What the dashboard middleware resolves, without AddHangfire: that would point Hangfire's static log
                // provider at this short-lived host's logger factory and break every later Hangfire user in the process.
                .ConfigureServices(services => services
                    .AddSingleton(GlobalConfiguration.Configuration)
                    .AddSingleton(Hangfire.Dashboard.DashboardRoutes.Routes))
                .Configure(app => app.UseHangfireDashboard("/hangfire", new DashboardOptions { Authorization = [] }, _storage)))
            .StartAsync();
        using var http = host.GetTestClient();

        foreach (var page in new[] { "/", "/jobs/enqueued", "/jobs/enqueued/gpu", "/jobs/enqueued/fetched/gpu", "/jobs/scheduled", "/jobs/processing",
                     "/jobs/succeeded", "/jobs/failed", "/jobs/deleted", "/jobs/awaiting", "/retries", "/recurring", "/servers", $"/jobs/details/{queued}" })
        {
            var response = await http.GetAsync("/hangfire" + page);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{page} answered {(int)response.StatusCode}");
        }
        Assert.Contains("gpu", await http.GetStringAsync("/hangfire/jobs/enqueued"));
        Assert.Contains("dashboard-test-server", await http.GetStringAsync("/hangfire/servers"));
        Assert.Contains(Name("hourly"), await http.GetStringAsync("/hangfire/recurring"));
        await host.StopAsync();
    }

    private BackgroundJobServer StartServer() => new(new BackgroundJobServerOptions
    {
        ServerName = $"test-{_run}",
        WorkerCount = 1,
        Queues = ["gpu", "default"],
        SchedulePollingInterval = TimeSpan.FromMilliseconds(500),
        CancellationCheckInterval = TimeSpan.FromSeconds(1),
        ShutdownTimeout = TimeSpan.FromSeconds(5),
        StopTimeout = TimeSpan.FromSeconds(2),
    }, _storage);

    private string Name(string what) => $"{_run}-{what}";

    private async Task WaitForState(string id, string state)
    {
        var clock = Stopwatch.StartNew();
        using var connection = _storage.GetConnection();
        while (connection.GetStateData(id)?.Name != state)
        {
            if (clock.Elapsed > Patience) Assert.Fail($"job {id} is {connection.GetStateData(id)?.Name}, not {state}");
            await Task.Delay(50);
        }
    }
}
