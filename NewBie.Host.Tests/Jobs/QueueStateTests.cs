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

    private static string Enqueue(NewBieApplication app, string user, int count)
    {
        var queue = app.Service<JobQueue>();
        string last = "";
        for (var i = 0; i < count; i++)
        {
            var (outcome, job) = queue.Submit(new JobRecord
            {
                UserId = user,
                Params = new JobParams { Prompt = "x", Width = 256, Height = 256, Steps = 2, Count = 1 },
            });
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
