using System.Diagnostics;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>One node's view of a storage with fair queues: the Hangfire storage and its queue side.</summary>
public sealed record FairNode(Hangfire.JobStorage Storage, IFairQueue Queue);

/// <summary>
/// The fair "gpu" queue's contract, black-box through Hangfire's API and <see cref="IFairQueue"/>: claim order
/// (priority class, least recently served user, FIFO), prediction equal to the claims, pause, re-prioritising,
/// cancelled jobs leaving the queue. Runs against LiteDbStorage and against the PostgreSQL storage; the factory makes
/// a node over one fresh database per test.
/// </summary>
public abstract class FairQueueContract : IDisposable
{
    private readonly Lazy<FairNode> _node;

    protected FairQueueContract(Func<FairNode> factory) => _node = new Lazy<FairNode>(factory);

    private FairNode Node => _node.Value;

    public virtual void Dispose() => GC.SuppressFinalize(this);

    [SkippableFact]
    public void Job_that_reaches_a_final_or_deleted_state_leaves_its_queue()
    {
        var deleted = Enqueue("gpu");
        var succeeded = Enqueue("gpu");
        var failed = Enqueue("gpu");
        var kept = Enqueue("gpu");
        Commit(tx =>
        {
            tx.SetJobState(deleted, new DeletedState());
            tx.SetJobState(succeeded, new SucceededState(null, 0, 0));
            tx.SetJobState(failed, new FailedState(new InvalidOperationException("x")));
        });

        Assert.Equal(new[] { kept }, Pending().Select(e => e.JobId));
        Assert.Equal(1, Node.Storage.GetMonitoringApi().EnqueuedCount("gpu"));
    }

    [SkippableFact]
    public void Flooding_user_does_not_make_others_wait_behind_all_their_jobs()
    {
        var a = Enumerable.Range(0, 10).Select(_ => Enqueue("gpu", Fair("A"))).ToList();
        var b = Enumerable.Range(0, 2).Select(_ => Enqueue("gpu", Fair("B"))).ToList();
        var c = Enumerable.Range(0, 2).Select(_ => Enqueue("gpu", Fair("C"))).ToList();

        var claimed = ClaimAll();

        Assert.Equal(14, claimed.Count);
        var fourthOfA = claimed.IndexOf(a[3]);
        Assert.All(b.Concat(c), id => Assert.True(claimed.IndexOf(id) < fourthOfA));
        Assert.Equal(new[] { a[0], b[0], c[0], a[1], b[1], c[1], a[2], a[3] }, claimed.Take(8));
    }

    [SkippableFact]
    public void Higher_priority_is_claimed_first_then_fifo_within_a_user()
    {
        var low = Enqueue("gpu", Fair("A", priority: 0));
        var normal = Enqueue("gpu", Fair("A"));
        var high = Enqueue("gpu", Fair("B", priority: 2));
        var normal2 = Enqueue("gpu", Fair("A"));

        Assert.Equal(new[] { high, normal, normal2, low }, ClaimAll());
    }

    [SkippableFact]
    public void Paused_queue_is_not_claimed_until_resumed_and_resume_wakes_a_waiting_fetcher()
    {
        var id = Enqueue("gpu", Fair("A"));
        Node.Queue.PauseQueue("gpu");
        using var connection = Node.Storage.GetConnection();

        Assert.True(Node.Queue.IsQueuePaused("gpu"));
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["gpu"], Cancel(300)));
        Assert.Equal(id, Assert.Single(Pending()).JobId);
        var clock = Stopwatch.StartNew();
        using var resumer = new Timer(_ => Node.Queue.ResumeQueue("gpu"), null, 200, Timeout.Infinite);
        using var fetched = connection.FetchNextJob(["gpu"], Cancel(10_000));

        Assert.Equal(id, fetched.JobId);
        Assert.False(Node.Queue.IsQueuePaused("gpu"));
        // Woken by the resume, not by the poll (a minute for LiteDB, 5 s on PostgreSQL).
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public void Raised_priority_of_a_waiting_job_moves_it_ahead_but_a_fetched_job_is_left_alone()
    {
        var first = Enqueue("gpu", Fair("A"));
        var second = Enqueue("gpu", Fair("A"));
        var third = Enqueue("gpu", Fair("B"));

        Assert.True(Node.Queue.SetQueuedPriority("gpu", third, 3));
        Assert.Equal(new[] { third, first, second }, Pending().Select(e => e.JobId));
        Assert.Equal(3, Pending()[0].Priority);
        var claimed = Claim(1);
        Assert.Equal(new[] { third }, claimed);
        Assert.False(Node.Queue.SetQueuedPriority("gpu", third, 0));
        Assert.False(Node.Queue.SetQueuedPriority("gpu", "999999", 3));
        Assert.False(Node.Queue.SetQueuedPriority("gpu", "not-an-id", 3));
    }

    [SkippableFact]
    public void Job_without_fair_parameters_waits_as_user_nobody_with_normal_priority_in_id_order()
    {
        var first = Enqueue("gpu");
        var second = Enqueue("gpu");

        var queue = Pending();

        Assert.Equal(new[] { first, second }, queue.Select(e => e.JobId));
        Assert.All(queue, e => Assert.Equal(("", 1), (e.UserId, e.Priority)));
        Assert.Equal(long.Parse(first), queue[0].Seq);
    }

    [SkippableFact]
    public void Explicit_seq_keeps_a_retried_job_ahead_of_its_owners_later_jobs()
    {
        var later = Enqueue("gpu", Fair("A", seq: 50));
        var retried = Enqueue("gpu", Fair("A", seq: 7));

        Assert.Equal(new[] { retried, later }, Pending().Select(e => e.JobId));
    }

    [SkippableFact]
    public void Fair_queue_prediction_matches_the_actual_claim_order()
    {
        var random = new Random(20251125);
        var users = new[] { "ann", "bob", "cyd", "dee", "eve" };
        for (var round = 0; round < 12; round++)
        {
            for (var i = random.Next(1, 8); i > 0; i--)
                Enqueue("gpu", Fair(users[random.Next(users.Length)], priority: random.Next(3)));

            var predicted = Pending().Select(e => e.JobId).ToList();
            var take = round == 11 ? predicted.Count : random.Next(0, predicted.Count + 1);
            var claimed = Claim(take);

            Assert.Equal(predicted.Take(take), claimed);
            Assert.Equal(predicted.Skip(take), Pending().Select(e => e.JobId));
        }
        Assert.Empty(Pending());
    }

    [SkippableFact]
    public void Fair_parameters_set_by_the_hangfire_client_are_read()
    {
        var client = new Hangfire.BackgroundJobClient(Node.Storage);
        var a = client.Create(Job.FromExpression(() => SampleJobs.Noop()), new EnqueuedState("gpu"),
            new Dictionary<string, object> { [FairQueueParameters.UserId] = "alice", [FairQueueParameters.Priority] = 2, [FairQueueParameters.Seq] = 99L, [FairQueueParameters.Ref] = "job-a" });

        var entry = Assert.Single(Pending());
        Assert.Equal(new FairQueueEntry(a, "alice", 2, 99, "job-a"), entry);
    }

    [SkippableFact]
    public void Queue_chosen_by_the_client_is_kept_with_the_job()
    {
        var id = new Hangfire.BackgroundJobClient(Node.Storage).Enqueue("gpu", () => SampleJobs.Noop());

        using var connection = Node.Storage.GetConnection();
        Assert.Equal("gpu", connection.GetJobData(id)!.Job.Queue);
        Assert.Equal(id, Assert.Single(Pending()).JobId);
    }

    [SkippableFact]
    public void Snapshot_version_changes_with_the_queue_and_the_change_event_names_it()
    {
        var changed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Node.Queue.FairQueueChanged += q => changed.TrySetResult(q);
        var before = Node.Queue.GetFairQueueSnapshot("gpu").Version;

        var id = Enqueue("gpu", Fair("A"));

        Assert.Equal("gpu", changed.Task.WaitAsync(TimeSpan.FromSeconds(10)).GetAwaiter().GetResult());
        var after = Node.Queue.GetFairQueueSnapshot("gpu");
        Assert.NotEqual(before, after.Version);
        Assert.Equal(id, Assert.Single(after.Pending).JobId);
        Assert.Same(after, Node.Queue.GetFairQueueSnapshot("gpu"));
        Assert.Equal(new[] { id }, Claim(1));
        Assert.NotEqual(after.Version, Node.Queue.GetFairQueueSnapshot("gpu").Version);
    }

    [SkippableFact]
    public void Fetched_jobs_are_listed_until_acknowledged()
    {
        var id = Enqueue("gpu", Fair("A"));
        using var connection = Node.Storage.GetConnection();

        using var fetched = connection.FetchNextJob(["gpu"], Cancel(5000));

        Assert.Equal(new[] { id }, Node.Queue.GetFetchedJobIds("gpu"));
        Assert.Empty(Pending());
        fetched.RemoveFromQueue();
        Assert.Empty(Node.Queue.GetFetchedJobIds("gpu"));
    }

    // Helpers

    protected IReadOnlyList<FairQueueEntry> Pending() => Node.Queue.GetFairQueueSnapshot("gpu").Pending;

    protected static CancellationToken Cancel(int milliseconds) => new CancellationTokenSource(milliseconds).Token;

    internal static Dictionary<string, string> Fair(string user, int priority = 1, long? seq = null)
    {
        var parameters = new Dictionary<string, string>
        {
            [FairQueueParameters.UserId] = SerializationHelper.Serialize(user, SerializationOption.User),
            [FairQueueParameters.Priority] = SerializationHelper.Serialize(priority, SerializationOption.User),
        };
        if (seq != null) parameters[FairQueueParameters.Seq] = SerializationHelper.Serialize(seq.Value, SerializationOption.User);
        return parameters;
    }

    protected string Enqueue(string queue, Dictionary<string, string>? parameters = null) => Enqueue(Node.Storage, queue, parameters);

    internal static string Enqueue(Hangfire.JobStorage storage, string queue, Dictionary<string, string>? parameters = null)
    {
        using var connection = storage.GetConnection();
        var id = connection.CreateExpiredJob(Job.FromExpression(() => SampleJobs.Noop()), parameters ?? [], DateTime.UtcNow, TimeSpan.FromHours(1));
        Commit(storage, tx =>
        {
            tx.SetJobState(id, new EnqueuedState(queue));
            tx.AddToQueue(queue, id);
        });
        return id;
    }

    private void Commit(Action<IWriteOnlyTransaction> write) => Commit(Node.Storage, write);

    internal static void Commit(Hangfire.JobStorage storage, Action<IWriteOnlyTransaction> write)
    {
        using var connection = storage.GetConnection();
        using var tx = connection.CreateWriteTransaction();
        write(tx);
        tx.Commit();
    }

    private List<string> Claim(int count) => Claim(Node.Storage, "gpu", count);

    internal static List<string> Claim(Hangfire.JobStorage storage, string queue, int count)
    {
        using var connection = storage.GetConnection();
        var claimed = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var job = connection.FetchNextJob([queue], Cancel(5000));
            claimed.Add(job.JobId);
            job.RemoveFromQueue();
        }
        return claimed;
    }

    private List<string> ClaimAll() => Claim(Pending().Count);
}
