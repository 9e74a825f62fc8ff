using NewBie.Host.Accounts;
using NewBie.Host.Admin;
using NewBie.Host.HangfireStorage;
using NewBie.Host.Jobs;
using NewBie.Host.Storage;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Jobs;

/// <summary>The group commit of submits (<see cref="JobStore.InsertMany"/>, <see cref="JobQueue.SubmitAsync"/>).</summary>
public sealed class GroupCommitTests : IDisposable
{
    private static readonly DateTime Day = new(2026, 3, 1, 0, 0, 0, DateTimeKind.Utc);
    private readonly LiteDbTestDatabase _serialDb = new();
    private readonly LiteDbTestDatabase _batchDb = new();

    public void Dispose()
    {
        _serialDb.Dispose();
        _batchDb.Dispose();
    }

    [Fact]
    public void A_batch_has_the_outcomes_of_its_submits_made_one_by_one()
    {
        // Every check in play: quota (alice has 5 images a day), a key replayed and one reused with another body within
        // the batch, bob's cap of 2 unfinished jobs, carol's storage cap (room for 2 at their largest), the queue's 8.
        SubmitRequest[] Requests(IUsageStore usage) =>
        [
            Submit(usage, "alice", images: 2, key: "k1", body: "a"),
            Submit(usage, "alice", images: 2, key: "k1", body: "a"),
            Submit(usage, "alice", images: 2, key: "k1", body: "b"),
            Submit(usage, "alice", images: 2),
            Submit(usage, "alice", images: 2),
            Submit(usage, "bob", maxActive: 2),
            Submit(usage, "bob", maxActive: 2),
            Submit(usage, "bob", maxActive: 2),
            Submit(usage, "carol", storageRoom: 2),
            Submit(usage, "carol", storageRoom: 2),
            Submit(usage, "carol", storageRoom: 2),
            Submit(usage, "dave"),
            Submit(usage, "dave"),
            Submit(usage, "erin"),
        ];
        var serialUsage = new LiteDbUsageStore(_serialDb.Database);
        var serialStore = new JobStore(new LiteDbJobRecords(_serialDb.Database));
        var serialRequests = Requests(serialUsage);
        // Each outcome with the index of the submit whose job it names (a replay names an earlier one).
        var serial = serialRequests.Select(r =>
        {
            // What the submit did before the group commit: charge, insert, give back when no job was created.
            if (!r.Quota!.Charge()) return (SubmitOutcome.QuotaExceeded, -1);
            var (outcome, job) = serialStore.Insert(r.Draft, r.MaxQueued, r.MaxActiveOfUser, storageCap: r.StorageCap);
            if (outcome != SubmitOutcome.Created) r.Quota.Refund();
            return (outcome, Array.FindIndex(serialRequests, s => s.Draft.Id == job?.Id));
        }).ToList();

        var batchUsage = new LiteDbUsageStore(_batchDb.Database);
        var batchStore = new JobStore(new LiteDbJobRecords(_batchDb.Database));
        var requests = Requests(batchUsage);
        var created = new List<JobRecord>();
        var results = batchStore.InsertMany(requests, jobs => created.AddRange(jobs));
        var batch = results.Select(r => (r.Outcome, Array.FindIndex(requests, s => s.Draft.Id == r.Job?.Id))).ToList();

        Assert.Equal(serial, batch);
        Assert.Contains(SubmitOutcome.QuotaExceeded, batch.Select(b => b.Outcome));
        Assert.Contains(SubmitOutcome.Replayed, batch.Select(b => b.Outcome));
        Assert.Contains(SubmitOutcome.IdempotencyConflict, batch.Select(b => b.Outcome));
        Assert.Contains(SubmitOutcome.UserQueueFull, batch.Select(b => b.Outcome));
        Assert.Contains(SubmitOutcome.StorageCapExceeded, batch.Select(b => b.Outcome));
        Assert.Contains(SubmitOutcome.QueueFull, batch.Select(b => b.Outcome));
        // The accepted jobs went to beforeInsert once, in submit order, and were stored with rising sequence numbers.
        Assert.Equal(results.Where(b => b.Outcome == SubmitOutcome.Created).Select(b => b.Job), created);
        Assert.Equal(created.Select(j => j.Seq).Order(), created.Select(j => j.Seq));
        Assert.All(created, j => Assert.NotNull(batchStore.Find(j.Id)));
        Assert.Equal(serialUsage.Used("alice", Day), batchUsage.Used("alice", Day));
        Assert.Equal(serialStore.CountQueued(), batchStore.CountQueued());
        Assert.Equal(serialStore.CountActive("bob"), batchStore.CountActive("bob"));
    }

    [Fact]
    public void A_batch_whose_write_fails_stores_nothing_and_charges_nothing()
    {
        var usage = new LiteDbUsageStore(_batchDb.Database);
        var store = new JobStore(new LiteDbJobRecords(_batchDb.Database));
        var requests = new[] { Submit(usage, "alice"), Submit(usage, "alice", key: "k", body: "a") };

        // As when the Hangfire commit meets a full disk: the records' write, with the quota charges, is rolled back.
        Assert.Throws<IOException>(() => store.InsertMany(requests, _ => throw new IOException("No space left on device", 28)));

        Assert.Empty(store.List(null, null, null, 10));
        Assert.Equal(0, usage.Used("alice", Day));
        Assert.Equal(0, store.CountQueued());
        Assert.Equal(0, store.CountActive("alice"));
        // The same submits go through afterwards, the key not taken by the failed batch.
        var again = store.InsertMany([Submit(usage, "alice"), Submit(usage, "alice", key: "k", body: "a")], _ => { });
        Assert.All(again, r => Assert.Equal(SubmitOutcome.Created, r.Outcome));
        Assert.Equal(2, usage.Used("alice", Day));
    }

    [Fact]
    public async Task Submits_that_arrive_during_a_commit_share_the_next_one()
    {
        using var app = new NewBieApplication();
        app.Service<QueueAdmin>().Pause();
        var queue = app.Service<JobQueue>();
        var storage = app.Service<LiteDbStorage>();
        const int n = 20;
        var before = storage.Commits;
        var batchesBefore = queue.GroupCommits;

        // A write of the Hangfire storage under way holds the first submit's commit, while the others arrive.
        var holding = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        var holder = Task.Run(() => storage.Write(() =>
        {
            holding.Set();
            release.Wait();
        }));
        holding.Wait();
        Task<(SubmitOutcome Outcome, JobRecord? Job)> Submit(int i) => Task.Run(() => queue.SubmitAsync(new JobRecord
        {
            UserId = $"user{i % 3}",
            Params = new JobParams { Prompt = "x", Width = 256, Height = 256, Steps = 2, Count = 1 },
        }));
        List<Task<(SubmitOutcome Outcome, JobRecord? Job)>> submits = [Submit(0)];
        // The first submit is writing its commit alone (held by the storage); the others arrive meanwhile and wait.
        Assert.True(SpinWait.SpinUntil(() => queue.Writing == 1, TimeSpan.FromSeconds(20)));
        submits.AddRange(Enumerable.Range(1, n - 1).Select(Submit));
        Assert.True(SpinWait.SpinUntil(() => queue.Waiting == n - 1, TimeSpan.FromSeconds(20)), $"{queue.Waiting} submits waiting");
        release.Set();
        await holder;
        var results = await Task.WhenAll(submits);

        Assert.All(results, r => Assert.Equal(SubmitOutcome.Created, r.Outcome));
        Assert.Equal(2, queue.GroupCommits - batchesBefore);
        // The held write, the first submit's commit and one for the other 19 (the Hangfire server's own writes may add a few).
        Assert.InRange(storage.Commits - before, 3, 6);
        var pending = storage.GetFairQueueSnapshot(JobQueue.GpuQueue).Pending.Select(e => e.Ref).ToHashSet();
        Assert.All(results, r => Assert.Contains(r.Job!.Id, pending));
        Assert.All(results, r => Assert.Equal(r.Job!.HangfireJobId, app.Service<JobStore>().Find(r.Job.Id)!.HangfireJobId));
        Assert.Equal(n, results.Select(r => r.Job!.Seq).Distinct().Count());
    }

    [Fact]
    public async Task The_counts_a_submit_checks_first_are_read_while_a_group_commit_is_being_written()
    {
        var store = new JobStore(new LiteDbJobRecords(_batchDb.Database));
        var usage = new LiteDbUsageStore(_batchDb.Database);
        store.InsertMany([Submit(usage, "alice")], _ => { });
        using var writing = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // The second batch holds the store's lock in its commit until released, as one writing to disk does.
        var commit = Task.Run(() => store.InsertMany([Submit(usage, "bob")], _ =>
        {
            writing.Set();
            release.Wait();
        }));
        writing.Wait();

        // Read on another thread: a read that waited for the lock would wait for the release, which comes only after.
        var read = Task.Run(() => (store.CountQueued(), store.CountActive("alice"), store.ActiveImageBytes("alice")));
        (int Queued, int Active, long Bytes) counts;
        try
        {
            counts = await read.WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            release.Set();
            await commit;
        }
        var (queued, active, bytes) = counts;

        Assert.True(queued >= 1, $"{queued} queued");
        Assert.Equal(1, active);
        Assert.Equal(new JobParams { Prompt = "p", Width = 256, Height = 256, Steps = 2, Count = 1 }.LargestBytes, bytes);
        Assert.Equal((2, 1), (store.CountQueued(), store.CountActive("bob")));
    }

    private static SubmitRequest Submit(IUsageStore usage, string user, int images = 1, string? key = null, string? body = null, int? maxActive = null,
        int? storageRoom = null)
    {
        var draft = new JobRecord
        {
            Id = Guid.NewGuid().ToString("N"),
            UserId = user,
            Status = JobStatus.Queued,
            Params = new JobParams { Prompt = "p", Width = 256, Height = 256, Steps = 2, Count = images },
            CreatedAt = Day.AddHours(12),
            IdempotencyKey = key,
            RequestHash = body,
        };
        StorageCap? cap = storageRoom is { } room ? new StorageCap(room * draft.Params.LargestBytes, 0) : null;
        var quota = new QuotaCharge(() => usage.TryCharge(user, Day, images, 5), () => usage.Refund(user, Day, images));
        return new SubmitRequest(draft, MaxQueued: 8, maxActive, cap, quota);
    }
}
