using System.Net;
using NewBie.Host.Admin;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests.Jobs;

/// <summary>The shared queue state: places from one derivation per change, event-stream caps, and what a failed job gives back.</summary>
public sealed class QueueStateTests
{
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 2 };

    [Fact]
    public void A_deep_queues_status_read_costs_no_more_than_a_shallow_ones()
    {
        using var app = new NewBieApplication();
        app.Service<QueueAdmin>().Pause();
        var jobs = app.Service<JobStore>();
        var view = app.Service<QueueView>();

        var shallow = Enqueue(app, "shallow", 5);
        var shallowCost = CostOfReading(jobs, view, shallow);
        var deep = Enqueue(app, "deep", 600);
        var derivationsBefore = view.Derivations;
        var deepCost = CostOfReading(jobs, view, deep);

        // Counted in bytes allocated per read, not in time: the old replay of the fair order allocated per queued job per read.
        Assert.True(deepCost <= shallowCost * 3, $"a read at 605 queued allocated {deepCost} bytes, at 5 queued {shallowCost}");
        Assert.Equal(605, view.PlaceOf(jobs.Find(deep)!).Position);
        Assert.Equal(derivationsBefore + 1, view.Derivations);
    }

    [Fact]
    public async Task A_submits_202_place_and_eta_are_what_a_later_status_read_shows_under_mixed_users_and_priorities()
    {
        using var app = new NewBieApplication();
        app.Service<QueueAdmin>().Pause();
        var accounts = app.Service<NewBie.Host.Accounts.AccountStore>();
        var clients = new[] { "alice", "bob", "carol", "dave" }.Select(name => (Name: name, Client: app.ClientWithKey(name))).ToList();
        accounts.UpdateUser("carol", u => u.PriorityClass = "high");
        var random = new Random(7);
        var submitted = new List<(HttpClient Client, string Id)>();
        for (var i = 0; i < 60; i++)
        {
            var (name, client) = clients[random.Next(clients.Count)];
            // Each user's own class, or low; carol's high jobs go ahead of everyone's normal ones, and low ones behind.
            var body = random.Next(3) == 0
                ? (object)new { prompt = $"{name}{i}", width = 256, height = 256, steps = 1 + random.Next(3), priority = "low" }
                : new { prompt = $"{name}{i}", width = 256, height = 256, steps = 1 + random.Next(3) };
            var accepted = await client.SubmitAsync(body);
            var id = accepted.Str("id");
            var read = await client.GetJobAsync(id);
            Assert.Equal(read.GetProperty("queue_position").GetInt32(), accepted.GetProperty("queue_position").GetInt32());
            Assert.Equal(read.GetProperty("eta_seconds").GetDouble(), accepted.GetProperty("eta_seconds").GetDouble(), 6);
            submitted.Add((client, id));
        }

        // Every place is distinct and is the job's place in the storage's claim order.
        var order = app.Service<NewBie.Host.HangfireStorage.IFairQueue>().GetFairQueueSnapshot(JobQueue.GpuQueue).Pending.Select(e => e.Ref).ToList();
        foreach (var (client, id) in submitted)
            Assert.Equal(order.IndexOf(id) + 1, (await client.GetJobAsync(id)).GetProperty("queue_position").GetInt32());
        Assert.Equal(order, app.Service<QueueView>().Current.Waiting.Select(w => w.Id));
    }

    [Fact]
    public async Task A_deep_queues_submit_joins_no_more_of_the_queue_than_a_shallow_ones()
    {
        using var app = new NewBieApplication(new() { ["Jobs:MaxQueuedJobs"] = "2000" });
        app.Service<QueueAdmin>().Pause();
        var view = app.Service<QueueView>();
        var alice = app.ClientWithKey("alice");

        async Task<long> CostOfSubmits()
        {
            _ = view.Current;
            var before = view.Joined;
            for (var i = 0; i < 40; i++) await alice.SubmitAsync(Small);
            return view.Joined - before;
        }

        Enqueue(app, "shallow", 5);
        var shallow = await CostOfSubmits();
        Enqueue(app, "deep", 1200);
        var deep = await CostOfSubmits();

        // Counted in queue entries joined to their records, not in time: re-deriving the state per submit joins every
        // queued job each time (here 40 × 1,200 against 40 × 25).
        Assert.True(deep <= shallow * 2, $"40 submits at 1,245 queued joined {deep} entries, at 5 queued {shallow}");
    }

    [Fact]
    public async Task Event_streams_beyond_the_per_user_cap_are_refused_with_429_too_many_streams()
    {
        using var app = new NewBieApplication(new() { ["Limits:MaxEventStreamsPerUser"] = "2" });
        app.Service<QueueAdmin>().Pause();
        var alice = app.ClientWithKey("alice");
        var id = (await alice.SubmitAsync(Small)).Str("id");

        using var first = await alice.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        using var second = await alice.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        using var third = await alice.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
        Assert.Equal("too_many_streams", (await third.ProblemAsync()).Str("code"));
        Assert.NotNull(third.Headers.RetryAfter?.Delta);
        Assert.Equal(2, app.Service<JobEventHub>().StreamsOf("alice"));

        // Another user's streams are counted apart.
        var bob = app.ClientWithKey("bob");
        var bobs = (await bob.SubmitAsync(Small)).Str("id");
        using var bobStream = await bob.GetAsync($"/v1/jobs/{bobs}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, bobStream.StatusCode);

        // A stream that ends (its job finished) frees its place.
        await alice.DeleteAsync($"/v1/jobs/{id}");
        await first.Content.ReadAsStringAsync();
        await second.Content.ReadAsStringAsync();
        var next = (await alice.SubmitAsync(Small)).Str("id");
        using var again = await alice.GetAsync($"/v1/jobs/{next}/events", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task A_job_that_fails_on_the_servers_side_gives_its_images_back_to_the_daily_quota()
    {
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:ImagesPerDay"] = "2" });
        var alice = app.ClientWithKey("alice");
        app.Engine.Failure = new InvalidOperationException("the engine broke");
        var failed = (await alice.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 })).Str("id");
        var job = await alice.WaitForStatusAsync(failed, "failed");
        Assert.Equal("internal", job.GetProperty("error").Str("code"));
        app.Engine.Failure = null;

        using var again = await alice.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 1, count = 2 });

        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    [Fact]
    public async Task A_job_whose_images_cannot_be_written_fails_leaving_no_output_folder_and_its_quota_returned()
    {
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:ImagesPerDay"] = "1" });
        var alice = app.ClientWithKey("alice");
        app.Engine.TruncatedImages = true;
        var id = (await alice.SubmitAsync(new { prompt = "x", width = 256, height = 256, steps = 1 })).Str("id");

        var job = await alice.WaitForStatusAsync(id, "failed");

        Assert.Equal("internal", job.GetProperty("error").Str("code"));
        var record = app.Service<JobStore>().Find(id)!;
        Assert.False(Directory.Exists(Path.Combine(app.Service<DataDirectory>().OutputsPath, OutputStore.UserFolder(record.UserId), id)));
        app.Engine.TruncatedImages = false;
        using var again = await alice.PostRawAsync("/v1/jobs", new { prompt = "x", width = 256, height = 256, steps = 1 });
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }

    [Fact]
    public void A_submits_hangfire_job_is_one_commit_of_the_hangfire_storage()
    {
        using var app = new NewBieApplication();
        app.Service<QueueAdmin>().Pause();
        var storage = app.Service<NewBie.Host.HangfireStorage.LiteDbStorage>();
        Enqueue(app, "warm", 1);

        var commits = new List<long>();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var before = storage.Commits;
            ids.Add(Enqueue(app, "alice", 1));
            commits.Add(storage.Commits - before);
        }

        // The job, its enqueued state and its queue row together (Hangfire's own factory takes two commits). The fewest
        // of three, since the Hangfire server's own writes (a heartbeat) may land inside one submit's window.
        Assert.Equal(1, commits.Min());
        var pending = storage.GetFairQueueSnapshot(JobQueue.GpuQueue).Pending.Select(e => e.Ref).ToList();
        Assert.All(ids, id => Assert.Contains(id, pending));
    }

    private static string Enqueue(NewBieApplication app, string user, int count)
    {
        var queue = app.Service<JobQueue>();
        string last = "";
        for (var i = 0; i < count; i++)
        {
            var (outcome, job) = queue.SubmitAsync(new JobRecord
            {
                UserId = user,
                Params = new JobParams { Prompt = "x", Width = 256, Height = 256, Steps = 2, Count = 1 },
            }).GetAwaiter().GetResult();
            Assert.Equal(SubmitOutcome.Created, outcome);
            last = job!.Id;
        }
        return last;
    }

    /// <summary>Bytes allocated by 50 status reads of one job's record and place, after the first read derived the state.</summary>
    private static long CostOfReading(JobStore jobs, QueueView view, string id)
    {
        view.PlaceOf(jobs.Find(id)!);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 50; i++) view.PlaceOf(jobs.Find(id)!);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
