using System.Collections.Concurrent;
using System.Globalization;
using Hangfire;
using Hangfire.Storage;
using NewBie.Host.HangfireStorage;
using NewBie.Host.HangfireStorage.Postgres;
using NewBie.Host.Tests.Storage;
using Npgsql;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>
/// Nodes on one fresh database of the test cluster: each <see cref="Node"/> is what one server process opens (its own
/// data source, Hangfire storage and fair queue). Disposed with the test.
/// </summary>
public sealed class PostgresNodes : IDisposable
{
    private readonly Lazy<PostgresTestDatabase> _database = new(PostgresCluster.CreateDatabase);
    private readonly List<PostgresJobStorage> _nodes = [];

    public PostgresTestDatabase Database => _database.Value;

    public PostgresJobStorage Node(TimeSpan? invisibilityTimeout = null)
    {
        var node = new PostgresJobStorage(Database.NewDataSource(), Database.ConnectionString, new PostgresQueueOptions { InvisibilityTimeout = invisibilityTimeout ?? TimeSpan.FromMinutes(5) });
        lock (_nodes) _nodes.Add(node);
        return node;
    }

    public void Dispose()
    {
        lock (_nodes) foreach (var node in _nodes) node.Dispose();
        if (_database.IsValueCreated) _database.Value.Dispose();
    }
}

/// <summary>The PostgreSQL storage under the fair queue contract, one node on a fresh database per test.</summary>
public sealed class PostgresFairQueueContractTests : FairQueueContract
{
    private readonly PostgresNodes _nodes;

    public PostgresFairQueueContractTests() : this(new PostgresNodes()) { }

    private PostgresFairQueueContractTests(PostgresNodes nodes) : base(() =>
    {
        var node = nodes.Node();
        return new FairNode(node.Storage, node.FairQueue);
    }) => _nodes = nodes;

    public override void Dispose()
    {
        _nodes.Dispose();
        base.Dispose();
    }
}

/// <summary>
/// What the PostgreSQL storage promises across nodes: one fair order, no double claim, shared pause and priorities, crash
/// recovery by sliding invisibility. No Hangfire server runs here, so these run beside other classes; the claim renewed by
/// a running server's heartbeat is <see cref="PostgresHeartbeatTests"/>.
/// </summary>
public sealed class PostgresStorageTests : IDisposable
{
    private readonly PostgresNodes _nodes = new();

    public void Dispose() => _nodes.Dispose();

    // Hangfire's dozen writes per submit need not each wait for the disk: the record's synchronous commit after them
    // flushes the WAL up to it (PostgresJobStorage.HangfireConnectionString). The app's own pool must still wait.
    [SkippableFact]
    public void Hangfire_connections_commit_without_waiting_for_the_disk_while_the_apps_wait()
    {
        // The test cluster commits asynchronously throughout; this database waits, as a shipped server does, so that
        // only the connection string's own setting can turn it off for Hangfire's pool.
        using (var admin = _nodes.Database.NewDataSource().OpenConnection())
        using (var wait = new NpgsqlCommand($"ALTER DATABASE {_nodes.Database.Name} SET synchronous_commit = on", admin))
            wait.ExecuteNonQuery();
        var node = _nodes.Node();
        static string Setting(NpgsqlConnection connection)
        {
            using var show = new NpgsqlCommand("SHOW synchronous_commit", connection);
            return (string)show.ExecuteScalar()!;
        }
        using (var hangfire = node.HangfireConnections.GetOrCreateConnection())
        {
            hangfire.Open();
            Assert.Equal("off", Setting(hangfire));
        }
        using var app = _nodes.Database.NewDataSource().OpenConnection();
        Assert.Equal("on", Setting(app));
    }

    [SkippableFact]
    public void Claims_alternating_between_two_nodes_follow_FairOrder()
    {
        var (a, b) = (_nodes.Node(), _nodes.Node());
        var random = new Random(20261202);
        var users = new[] { "ann", "bob", "cyd", "dee" };
        var queued = new List<FairQueueEntry>();
        for (var i = 0; i < 30; i++)
        {
            var (user, priority) = (users[random.Next(users.Length)], random.Next(3));
            var node = i % 2 == 0 ? a : b;
            var id = FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair(user, priority));
            queued.Add(new FairQueueEntry(id, user, priority, long.Parse(id, CultureInfo.InvariantCulture)));
        }
        var expected = FairOrder.Order(queued, new Dictionary<string, long>(), 0).Select(e => e.JobId).ToList();

        // Each node predicts the same order from the shared rows.
        Assert.Equal(expected, a.FairQueue.GetFairQueueSnapshot("gpu").Pending.Select(e => e.JobId));
        Assert.Equal(expected, b.FairQueue.GetFairQueueSnapshot("gpu").Pending.Select(e => e.JobId));
        var claimed = new List<string>();
        for (var i = 0; i < expected.Count; i++) claimed.AddRange(FairQueueContract.Claim(i % 2 == 0 ? b.Storage : a.Storage, "gpu", 1));

        Assert.Equal(expected, claimed);
    }

    [SkippableFact]
    public void A_node_started_later_continues_the_turns_the_others_served()
    {
        var a = _nodes.Node();
        FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        var bJob = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("B"));
        FairQueueContract.Claim(a.Storage, "gpu", 1); // A was served last, so B is next on every node

        var later = _nodes.Node();

        Assert.Equal(bJob, later.FairQueue.GetFairQueueSnapshot("gpu").Pending[0].JobId);
        Assert.Equal(bJob, FairQueueContract.Claim(later.Storage, "gpu", 1).Single());
    }

    [SkippableFact]
    public async Task Concurrent_fetchers_on_two_nodes_never_claim_one_job_twice()
    {
        var (a, b) = (_nodes.Node(), _nodes.Node());
        var all = Enumerable.Range(0, 40).Select(i => FairQueueContract.Enqueue(i % 2 == 0 ? a.Storage : b.Storage, "gpu", FairQueueContract.Fair($"u{i % 5}"))).ToHashSet();
        var claims = new ConcurrentBag<string>();

        // Two fetchers per node, each claiming until the queue stays empty for a moment.
        await Task.WhenAll(new[] { a, a, b, b }.Select(node => Task.Run(() =>
        {
            using var connection = node.Storage.GetConnection();
            while (true)
            {
                IFetchedJob job;
                try { job = connection.FetchNextJob(["gpu"], new CancellationTokenSource(1500).Token); }
                catch (OperationCanceledException) { return; }
                claims.Add(job.JobId);
                job.RemoveFromQueue();
                job.Dispose();
            }
        })));

        Assert.Equal(all.Count, claims.Count);
        Assert.Equal(all, claims.ToHashSet());
    }

    [SkippableFact]
    public async Task Priority_change_and_pause_on_one_node_hold_on_the_other()
    {
        var (a, b) = (_nodes.Node(), _nodes.Node());
        var first = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        var second = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("B"));
        Assert.Equal(new[] { first, second }, b.FairQueue.GetFairQueueSnapshot("gpu").Pending.Select(e => e.JobId));

        Assert.True(a.FairQueue.SetQueuedPriority("gpu", second, 2));
        await Until(b.FairQueue, () => b.FairQueue.GetFairQueueSnapshot("gpu").Pending.Select(e => e.JobId).SequenceEqual([second, first]));

        a.FairQueue.PauseQueue("gpu");
        await Until(b.FairQueue, () => b.FairQueue.IsQueuePaused("gpu"));
        using var connection = b.Storage.GetConnection();
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["gpu"], new CancellationTokenSource(500).Token));

        // B waits; the resume on A wakes it through the notification, well before its 5 s poll.
        var fetch = Task.Run(() => connection.FetchNextJob(["gpu"], new CancellationTokenSource(10_000).Token));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        a.FairQueue.ResumeQueue("gpu");
        using var fetched = await fetch;
        Assert.Equal(second, fetched.JobId);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.False(b.FairQueue.IsQueuePaused("gpu"));
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public async Task Cancelled_job_leaves_the_queue_seen_by_the_other_node()
    {
        var (a, b) = (_nodes.Node(), _nodes.Node());
        var cancelled = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        var kept = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        Assert.Equal(2, b.FairQueue.GetFairQueueSnapshot("gpu").Pending.Count);

        new BackgroundJobClient(a.Storage).Delete(cancelled);

        await Until(b.FairQueue, () => b.FairQueue.GetFairQueueSnapshot("gpu").Pending.Select(e => e.JobId).SequenceEqual([kept]));
        Assert.Equal(new[] { kept }, FairQueueContract.Claim(b.Storage, "gpu", 1));
    }

    [SkippableFact]
    public void Dashboard_pages_the_fair_queue_in_claim_order_with_its_counts()
    {
        var node = _nodes.Node();
        var a1 = FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair("A"));
        var a2 = FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair("A"));
        var b1 = FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair("B"));
        using var connection = node.Storage.GetConnection();
        using var fetched = connection.FetchNextJob(["gpu"], new CancellationTokenSource(5000).Token);
        var monitor = node.Storage.GetMonitoringApi();

        Assert.Equal(a1, fetched.JobId);
        // The page holds the fair queue's next jobs; Hangfire.PostgreSql then sorts the page by job id (ORDER BY id).
        Assert.Equal(new[] { b1, a2 }.Order(), monitor.EnqueuedJobs("gpu", 0, 10).Select(j => j.Key).Order());
        Assert.Equal(new[] { b1 }, monitor.EnqueuedJobs("gpu", 0, 1).Select(j => j.Key));
        Assert.Equal(new[] { a1 }, monitor.FetchedJobs("gpu", 0, 10).Select(j => j.Key));
        Assert.Equal((2L, 1L), (monitor.EnqueuedCount("gpu"), monitor.FetchedCount("gpu")));
        Assert.Equal("gpu", Assert.Single(monitor.Queues()).Name);
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public void Snapshot_is_loaded_once_per_change_not_once_per_reader()
    {
        var node = _nodes.Node();
        FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair("A"));
        var snapshot = node.FairQueue.GetFairQueueSnapshot("gpu");
        var loads = node.FairQueue.Loads;

        // No change: a thousand readers on eight threads share the one snapshot.
        Parallel.For(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => Assert.Same(snapshot, node.FairQueue.GetFairQueueSnapshot("gpu")));
        Assert.Equal(loads, node.FairQueue.Loads);

        // One change (the node's own enqueue): one more load, whatever the readers.
        FairQueueContract.Enqueue(node.Storage, "gpu", FairQueueContract.Fair("B"));
        Parallel.For(0, 1000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => Assert.Equal(2, node.FairQueue.GetFairQueueSnapshot("gpu").Pending.Count));
        Assert.Equal(loads + 1, node.FairQueue.Loads);
    }

    [SkippableFact]
    public void Job_of_a_silent_holder_is_claimable_by_another_node_after_the_invisibility_timeout_and_not_before()
    {
        var timeout = TimeSpan.FromSeconds(2);
        var (a, b) = (_nodes.Node(timeout), _nodes.Node(timeout));
        var id = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        using var holder = a.Storage.GetConnection();
        // Fetched by A, which then falls silent: no Hangfire server runs A's heartbeat, nobody acknowledges or requeues.
        var held = holder.FetchNextJob(["gpu"], new CancellationTokenSource(5000).Token);
        var fetchedAt = FetchedAt(id);

        using var connection = b.Storage.GetConnection();
        using var taken = connection.FetchNextJob(["gpu"], new CancellationTokenSource(30_000).Token);

        Assert.Equal(id, taken.JobId);
        var takenAt = FetchedAt(id);
        Assert.True(takenAt - fetchedAt >= timeout, $"claimed again {takenAt - fetchedAt} after the first claim, timeout {timeout}");
        // The silent holder's late acknowledge does not remove the new holder's claim.
        held.RemoveFromQueue();
        Assert.Equal(new[] { id }, b.FairQueue.GetFetchedJobIds("gpu"));
        taken.RemoveFromQueue();
        Assert.Empty(b.FairQueue.GetFetchedJobIds("gpu"));
    }

    private DateTime FetchedAt(string jobId) => FetchedAt(_nodes, jobId);

    /// <summary>When the job's queue row was last claimed or its claim renewed.</summary>
    internal static DateTime FetchedAt(PostgresNodes nodes, string jobId)
    {
        using var source = NpgsqlDataSource.Create(nodes.Database.ConnectionString);
        using var command = source.CreateCommand("SELECT fetchedat FROM hangfire.jobqueue WHERE jobid = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = long.Parse(jobId, CultureInfo.InvariantCulture) });
        return (DateTime)command.ExecuteScalar()!;
    }

    // Waits for the queue's change events until the condition holds (what another node learns only by notification).
    private static async Task Until(IFairQueue queue, Func<bool> condition)
    {
        var signal = new QueueSignal();
        queue.FairQueueChanged += _ => signal.RaiseAll();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var next = signal.Next(["gpu"]);
            if (condition()) return;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) Assert.Fail("the other node never saw the change");
            await Task.WhenAny(next, Task.Delay(left));
        }
    }
}

/// <summary>Hangfire.PostgreSql with the fair queue plugged in, under the black-box Hangfire storage contract.</summary>
[LongRunning]
public sealed class PostgresStorageContractTests : JobStorageContract
{
    private readonly PostgresNodes _nodes;

    public PostgresStorageContractTests() : this(new PostgresNodes()) { }

    private PostgresStorageContractTests(PostgresNodes nodes) : base(() => nodes.Node().Storage) => _nodes = nodes;

    // Hangfire.PostgreSql 1.21.1's own behaviour, which Hangfire's server does not depend on; the rest of the contract holds.
    protected override string? Deviation(string test) => test switch
    {
        nameof(Advertises_the_features_it_implements) => "Hangfire.PostgreSql advertises only Job.Queue and batched GetFirstByLowestScoreFromSet",
        nameof(Set_is_ordered_by_score) => "Hangfire.PostgreSql's GetRangeFromSet pages sets by insertion, not by score",
        nameof(Distributed_lock_is_reentrant_on_one_connection_and_exclusive_across_connections) => "Hangfire.PostgreSql times out with its own PostgreSqlDistributedLockException",
        nameof(Monitoring_statistics_count_states_sets_and_counters) => "Hangfire.PostgreSql's statistics differ (counters are aggregated later; no recurring count from the set)",
        nameof(Null_keys_are_refused) => "Hangfire.PostgreSql does not check every key for null",
        nameof(Acknowledge_in_a_transaction_removes_the_job_with_the_commit) => "Hangfire.PostgreSql acknowledges only outside transactions",
        _ => null,
    };

    public override void Dispose()
    {
        base.Dispose();
        _nodes.Dispose();
    }
}

/// <summary>
/// A claim renewed by the heartbeat of a Hangfire server on the holding node. A Hangfire server shares Hangfire's static
/// configuration, so this runs alone (<see cref="HangfireServerCollection"/>).
/// </summary>
[Collection(HangfireServerCollection.Name)]
public sealed class PostgresHeartbeatTests : IDisposable
{
    private readonly PostgresNodes _nodes = new();

    public void Dispose() => _nodes.Dispose();

    [SkippableFact]
    public void Job_whose_holder_keeps_heartbeating_is_not_claimed_by_another_node_past_the_timeout()
    {
        var timeout = TimeSpan.FromSeconds(2);
        var (a, b) = (_nodes.Node(timeout), _nodes.Node(timeout));
        var id = FairQueueContract.Enqueue(a.Storage, "gpu", FairQueueContract.Fair("A"));
        // A Hangfire server on A (on another queue) runs A's storage heartbeat, which renews A's claims.
        using var heartbeat = new BackgroundJobServer(new BackgroundJobServerOptions { Queues = ["idle"], WorkerCount = 1, ServerName = "a-heartbeat" }, a.Storage);
        using var holder = a.Storage.GetConnection();
        using var held = holder.FetchNextJob(["gpu"], new CancellationTokenSource(5000).Token);
        var fetchedAt = PostgresStorageTests.FetchedAt(_nodes, id);

        using var connection = b.Storage.GetConnection();
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["gpu"], new CancellationTokenSource(3 * timeout).Token));

        Assert.True(PostgresStorageTests.FetchedAt(_nodes, id) > fetchedAt, "A's claim was never renewed");
        Assert.Equal(new[] { id }, b.FairQueue.GetFetchedJobIds("gpu"));
        held.RemoveFromQueue();
    }
}
