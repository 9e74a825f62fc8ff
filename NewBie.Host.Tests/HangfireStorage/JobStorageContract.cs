using System.Runtime.CompilerServices;
using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;

namespace NewBie.Host.Tests.HangfireStorage;

public static class SampleJobs
{
    public static void Noop() { }
}

/// <summary>
/// Black-box contract of a Hangfire job storage: every write goes through Hangfire's connection or transaction API
/// and is checked only through connection and monitoring reads. Runs against Hangfire.InMemory (the oracle) and
/// against LiteDbStorage, so any difference in behaviour shows up as a failure on one side.
/// </summary>
public abstract class JobStorageContract : IDisposable
{
    private readonly Lazy<Hangfire.JobStorage> _storage;

    protected JobStorageContract(Func<Hangfire.JobStorage> factory) => _storage = new Lazy<Hangfire.JobStorage>(factory);

    protected Hangfire.JobStorage Storage => _storage.Value;

    /// <summary>
    /// Why a test of this contract does not apply to the storage under test (a known deviation of a third-party
    /// storage, stated with its reason), or null. Only the tests that call <see cref="Applicable"/> ask.
    /// </summary>
    protected virtual string? Deviation(string test) => null;

    /// <summary>Skips the calling test where the storage is known to deviate from it (<see cref="Deviation"/>).</summary>
    protected void Applicable([CallerMemberName] string test = "")
    {
        if (Deviation(test) is { } why) Skip.If(true, why);
    }

    /// <summary>Skips a test of an optional Hangfire feature that the storage does not advertise: Hangfire never uses it there.</summary>
    protected void Requires(string feature) => Skip.IfNot(Storage.HasFeature(feature), $"{Storage} does not advertise {feature}");

    public virtual void Dispose()
    {
        if (_storage.IsValueCreated) (_storage.Value as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }

    // Jobs and parameters

    [SkippableFact]
    public void Created_job_has_its_invocation_parameters_and_no_state()
    {
        using var connection = Connect();
        var createdAt = DateTime.UtcNow;
        var id = connection.CreateExpiredJob(Job.FromExpression(() => SampleJobs.Noop()), new Dictionary<string, string> { ["Key"] = "\"value\"" }, createdAt, TimeSpan.FromHours(1));

        var data = connection.GetJobData(id)!;
        Assert.Equal(nameof(SampleJobs.Noop), data.Job.Method.Name);
        Assert.Null(data.State);
        Assert.InRange(data.CreatedAt, createdAt.AddSeconds(-1), createdAt.AddSeconds(1));
        Assert.Equal("\"value\"", connection.GetJobParameter(id, "Key"));
        Assert.Null(connection.GetStateData(id));
    }

    [SkippableFact]
    public void Job_parameters_can_be_set_overwritten_and_missing_ones_are_null()
    {
        Requires(JobStorageFeatures.Transaction.SetJobParameter);
        using var connection = Connect();
        var id = CreateJob(connection);
        connection.SetJobParameter(id, "Name", "1");
        connection.SetJobParameter(id, "Name", "2");
        Commit(tx => ((JobStorageTransaction)tx).SetJobParameter(id, "Other", "3"));

        Assert.Equal("2", connection.GetJobParameter(id, "Name"));
        Assert.Equal("3", connection.GetJobParameter(id, "Other"));
        Assert.Null(connection.GetJobParameter(id, "Missing"));
    }

    [SkippableFact]
    public void Unknown_job_reads_as_null()
    {
        using var connection = Connect();
        Assert.Null(connection.GetJobData("4242"));
        Assert.Null(connection.GetStateData("4242"));
        Assert.Null(Storage.GetMonitoringApi().JobDetails("4242"));
    }

    [SkippableFact]
    public void Transaction_can_create_a_job_with_parameters_visible_after_commit()
    {
        Requires(JobStorageFeatures.Transaction.CreateJob);
        using var connection = Connect();
        using var tx = (JobStorageTransaction)connection.CreateWriteTransaction();
        var id = tx.CreateJob(Job.FromExpression(() => SampleJobs.Noop()), new Dictionary<string, string> { ["A"] = "1" }, DateTime.UtcNow, TimeSpan.FromHours(1));
        tx.SetJobParameter(id, "B", "2");
        tx.SetJobState(id, new EnqueuedState("default"));
        tx.Commit();

        Assert.Equal("1", connection.GetJobParameter(id, "A"));
        Assert.Equal("2", connection.GetJobParameter(id, "B"));
        Assert.Equal(EnqueuedState.StateName, connection.GetJobData(id)!.State);
    }

    [SkippableFact]
    public void Every_change_to_one_job_in_one_commit_takes_effect_in_order()
    {
        Requires(JobStorageFeatures.Transaction.CreateJob);
        using var connection = Connect();
        var existing = CreateJob(connection);
        string created;
        using (var tx = (JobStorageTransaction)connection.CreateWriteTransaction())
        {
            created = tx.CreateJob(Job.FromExpression(() => SampleJobs.Noop()), new Dictionary<string, string> { ["A"] = "1" }, DateTime.UtcNow, TimeSpan.FromHours(1));
            foreach (var id in new[] { existing, created })
            {
                tx.SetJobParameter(id, "B", "2");
                tx.SetJobState(id, new EnqueuedState("default"));
                tx.SetJobParameter(id, "B", "3");
                tx.ExpireJob(id, TimeSpan.FromHours(2));
                tx.AddToQueue("default", id);
                tx.SetJobState(id, Processing("server-1"));
                tx.PersistJob(id);
            }
            tx.Commit();
        }

        foreach (var id in new[] { existing, created })
        {
            Assert.Equal("3", connection.GetJobParameter(id, "B"));
            Assert.Equal(ProcessingState.StateName, connection.GetJobData(id)!.State);
            Assert.Equal("server-1", connection.GetStateData(id)!.Data["ServerId"]);
            var details = Storage.GetMonitoringApi().JobDetails(id)!;
            Assert.Null(details.ExpireAt);
            Assert.Equal(new[] { ProcessingState.StateName, EnqueuedState.StateName }, details.History.Select(h => h.StateName));
        }
        Assert.Equal("1", connection.GetJobParameter(created, "A"));
        Assert.Equal(2, Storage.GetMonitoringApi().EnqueuedCount("default"));
    }

    [SkippableFact]
    public void SetJobState_changes_the_current_state_and_AddJobState_only_the_history()
    {
        using var connection = Connect();
        var id = CreateJob(connection);
        Commit(tx => tx.SetJobState(id, new EnqueuedState("default") { Reason = "go" }));
        Commit(tx => tx.AddJobState(id, Processing("server-1")));

        var state = connection.GetStateData(id)!;
        Assert.Equal(EnqueuedState.StateName, state.Name);
        Assert.Equal("go", state.Reason);
        Assert.Equal("default", state.Data["Queue"]);
        Assert.Equal(EnqueuedState.StateName, connection.GetJobData(id)!.State);

        var history = Storage.GetMonitoringApi().JobDetails(id)!.History;
        Assert.Equal(new[] { ProcessingState.StateName, EnqueuedState.StateName }, history.Select(h => h.StateName));
        Assert.Equal("server-1", history[0].Data["ServerId"]);
    }

    [SkippableFact]
    public void ExpireJob_and_PersistJob_set_and_clear_the_expiry()
    {
        using var connection = Connect();
        var id = CreateJob(connection);
        Commit(tx => tx.PersistJob(id));
        Assert.Null(Storage.GetMonitoringApi().JobDetails(id)!.ExpireAt);

        Commit(tx => tx.ExpireJob(id, TimeSpan.FromHours(2)));
        var expireAt = Storage.GetMonitoringApi().JobDetails(id)!.ExpireAt!.Value;
        Assert.InRange(expireAt, DateTime.UtcNow.AddHours(2).AddMinutes(-1), DateTime.UtcNow.AddHours(2).AddMinutes(1));
    }

    // Sets

    [SkippableFact]
    public void Set_add_remove_count_contains()
    {
        Requires(JobStorageFeatures.Connection.LimitedGetSetCount);
        using var connection = Connect();
        Commit(tx =>
        {
            tx.AddToSet("s", "a");
            tx.AddToSet("s", "b");
            tx.AddToSet("s", "b");
            ((JobStorageTransaction)tx).AddRangeToSet("s", ["c", "d"]);
            tx.AddToSet("other", "x");
            tx.RemoveFromSet("s", "d");
        });

        Assert.Equal(new HashSet<string> { "a", "b", "c" }, connection.GetAllItemsFromSet("s"));
        Assert.Equal(3, connection.GetSetCount("s"));
        Assert.Equal(2, connection.GetSetCount(["s", "other"], 2));
        Assert.Equal(4, connection.GetSetCount(["s", "other"], 10));
        Assert.True(connection.GetSetContains("s", "a"));
        Assert.False(connection.GetSetContains("s", "d"));
        Assert.Empty(connection.GetAllItemsFromSet("missing"));

        Commit(tx => ((JobStorageTransaction)tx).RemoveSet("s"));
        Assert.Equal(0, connection.GetSetCount("s"));
        Assert.Equal(1, connection.GetSetCount("other"));
    }

    [SkippableFact]
    public void Set_is_ordered_by_score()
    {
        Applicable();
        using var connection = Connect();
        Commit(tx =>
        {
            tx.AddToSet("z", "three", 3);
            tx.AddToSet("z", "one", 1);
            tx.AddToSet("z", "two", 2);
            tx.AddToSet("z", "ten", 10);
            tx.AddToSet("z", "one", -1);
        });

        Assert.Equal(new[] { "one", "two", "three", "ten" }, connection.GetRangeFromSet("z", 0, 3));
        Assert.Equal(new[] { "two", "three" }, connection.GetRangeFromSet("z", 1, 2));
        Assert.Equal("one", connection.GetFirstByLowestScoreFromSet("z", -5, 5));
        Assert.Equal("two", connection.GetFirstByLowestScoreFromSet("z", 1.5, 5));
        Assert.Null(connection.GetFirstByLowestScoreFromSet("z", 4, 9));
        Assert.Equal(new[] { "two", "three" }, connection.GetFirstByLowestScoreFromSet("z", 0, 100, 2));
        Assert.Null(connection.GetFirstByLowestScoreFromSet("missing", 0, 1));
    }

    // Hashes

    [SkippableFact]
    public void Hash_fields_are_set_read_counted_and_removed()
    {
        using var connection = Connect();
        connection.SetRangeInHash("h", [new("a", "1"), new("b", "2")]);
        Commit(tx => tx.SetRangeInHash("h", [new("b", "3"), new("c", "4")]));

        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["b"] = "3", ["c"] = "4" }, connection.GetAllEntriesFromHash("h"));
        Assert.Equal("3", connection.GetValueFromHash("h", "b"));
        Assert.Null(connection.GetValueFromHash("h", "missing"));
        Assert.Equal(3, connection.GetHashCount("h"));
        Assert.Null(connection.GetAllEntriesFromHash("missing"));

        Commit(tx => tx.RemoveHash("h"));
        Assert.Null(connection.GetAllEntriesFromHash("h"));
        Assert.Equal(0, connection.GetHashCount("h"));
    }

    [SkippableFact]
    public void Values_are_kept_verbatim_including_blanks_and_empty_strings()
    {
        using var connection = Connect();
        Commit(tx =>
        {
            tx.SetRangeInHash("h", [new("empty", ""), new("spaced", "  v  ")]);
            tx.AddToSet("s", " x ");
            tx.InsertToList("l", "");
        });
        var id = CreateJob(connection, new Dictionary<string, string> { ["p"] = " q " });

        Assert.Equal("", connection.GetValueFromHash("h", "empty"));
        Assert.Equal("  v  ", connection.GetValueFromHash("h", "spaced"));
        Assert.Equal(" x ", Assert.Single(connection.GetAllItemsFromSet("s")));
        Assert.Equal("", Assert.Single(connection.GetAllItemsFromList("l")));
        Assert.Equal(" q ", connection.GetJobParameter(id, "p"));
    }

    // Lists

    [SkippableFact]
    public void List_is_newest_first_and_TrimList_keeps_the_given_range()
    {
        using var connection = Connect();
        Commit(tx =>
        {
            foreach (var item in new[] { "1", "2", "3", "4", "5" }) tx.InsertToList("l", item);
        });
        Assert.Equal(new[] { "5", "4", "3", "2", "1" }, connection.GetAllItemsFromList("l"));
        Assert.Equal(new[] { "4", "3" }, connection.GetRangeFromList("l", 1, 2));
        Assert.Equal(5, connection.GetListCount("l"));

        Commit(tx => tx.TrimList("l", 1, 3));
        Assert.Equal(new[] { "4", "3", "2" }, connection.GetAllItemsFromList("l"));
        Assert.Empty(connection.GetAllItemsFromList("missing"));
    }

    [SkippableFact]
    public void RemoveFromList_removes_every_occurrence()
    {
        using var connection = Connect();
        Commit(tx =>
        {
            tx.InsertToList("l", "a");
            tx.InsertToList("l", "b");
            tx.InsertToList("l", "a");
        });
        Commit(tx => tx.RemoveFromList("l", "a"));
        Assert.Equal(new[] { "b" }, connection.GetAllItemsFromList("l"));
    }

    // Counters

    [SkippableFact]
    public void Counters_add_up_increments_and_decrements()
    {
        using var connection = Connect();
        Commit(tx =>
        {
            tx.IncrementCounter("c");
            tx.IncrementCounter("c");
            tx.IncrementCounter("c", TimeSpan.FromHours(1));
            tx.DecrementCounter("c");
            tx.DecrementCounter("d", TimeSpan.FromHours(1));
        });
        Assert.Equal(2, connection.GetCounter("c"));
        Assert.Equal(-1, connection.GetCounter("d"));
        Assert.Equal(0, connection.GetCounter("missing"));
    }

    // TTLs

    [SkippableFact]
    public void Ttl_is_set_by_expire_and_negative_when_persistent_or_missing()
    {
        using var connection = Connect();
        Commit(tx =>
        {
            tx.AddToSet("s", "v");
            tx.InsertToList("l", "v");
            tx.SetRangeInHash("h", [new("f", "v")]);
        });
        Assert.True(connection.GetSetTtl("s") < TimeSpan.Zero);
        Assert.True(connection.GetListTtl("l") < TimeSpan.Zero);
        Assert.True(connection.GetHashTtl("h") < TimeSpan.Zero);
        Assert.True(connection.GetSetTtl("missing") < TimeSpan.Zero);

        Commit(tx =>
        {
            var t = (JobStorageTransaction)tx;
            t.ExpireSet("s", TimeSpan.FromMinutes(10));
            t.ExpireList("l", TimeSpan.FromMinutes(10));
            t.ExpireHash("h", TimeSpan.FromMinutes(10));
        });
        Assert.InRange(connection.GetSetTtl("s"), TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        Assert.InRange(connection.GetListTtl("l"), TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        Assert.InRange(connection.GetHashTtl("h"), TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));

        Commit(tx =>
        {
            var t = (JobStorageTransaction)tx;
            t.PersistSet("s");
            t.PersistList("l");
            t.PersistHash("h");
        });
        Assert.True(connection.GetSetTtl("s") < TimeSpan.Zero);
        Assert.True(connection.GetListTtl("l") < TimeSpan.Zero);
        Assert.True(connection.GetHashTtl("h") < TimeSpan.Zero);
    }

    // Transactions

    [SkippableFact]
    public void Nothing_is_visible_before_commit_nor_after_dispose_without_commit()
    {
        using var connection = Connect();
        using (var tx = connection.CreateWriteTransaction())
        {
            tx.AddToSet("s", "v");
            tx.IncrementCounter("c");
            Assert.Equal(0, connection.GetSetCount("s"));
        }
        Assert.Equal(0, connection.GetSetCount("s"));
        Assert.Equal(0, connection.GetCounter("c"));
    }

    [SkippableFact]
    public void A_failing_operation_in_a_commit_leaves_nothing_of_the_commit_visible()
    {
        using var connection = Connect();
        var id = CreateJob(connection);
        Commit(tx => tx.SetJobState(id, new EnqueuedState("default")));

        var failure = Record.Exception(() =>
        {
            using var tx = connection.CreateWriteTransaction();
            tx.AddToSet("s", "v");
            tx.IncrementCounter("c");
            tx.InsertToList("l", "v");
            tx.SetRangeInHash("h", [new("f", "v")]);
            tx.AddToQueue("default", id);
            tx.SetJobState(id, new ExplodingState());
            tx.Commit();
        });

        Assert.IsType<InvalidOperationException>(failure);
        Assert.Equal(0, connection.GetSetCount("s"));
        Assert.Equal(0, connection.GetCounter("c"));
        Assert.Equal(0, connection.GetListCount("l"));
        Assert.Null(connection.GetAllEntriesFromHash("h"));
        Assert.Equal(0, Storage.GetMonitoringApi().EnqueuedCount("default"));
        Assert.Equal(EnqueuedState.StateName, connection.GetStateData(id)!.Name);
    }

    // Servers

    [SkippableFact]
    public void Announced_server_is_listed_heartbeats_and_is_removed()
    {
        using var connection = Connect();
        connection.AnnounceServer("server-1", new Hangfire.Server.ServerContext { WorkerCount = 3, Queues = ["gpu", "default"] });
        connection.Heartbeat("server-1");

        var server = Assert.Single(Storage.GetMonitoringApi().Servers());
        Assert.Equal("server-1", server.Name);
        Assert.Equal(3, server.WorkersCount);
        Assert.Equal(new[] { "gpu", "default" }, server.Queues);
        Assert.Equal(1, Storage.GetMonitoringApi().GetStatistics().Servers);

        connection.RemoveServer("server-1");
        Assert.Empty(Storage.GetMonitoringApi().Servers());
    }

    [SkippableFact]
    public void Servers_without_recent_heartbeat_are_removed_as_timed_out()
    {
        using var connection = Connect();
        connection.AnnounceServer("old", new Hangfire.Server.ServerContext { WorkerCount = 1, Queues = ["default"] });
        Thread.Sleep(100);
        connection.AnnounceServer("fresh", new Hangfire.Server.ServerContext { WorkerCount = 1, Queues = ["default"] });

        Assert.Equal(1, connection.RemoveTimedOutServers(TimeSpan.FromMilliseconds(50)));
        Assert.Equal("fresh", Assert.Single(Storage.GetMonitoringApi().Servers()).Name);
    }

    [SkippableFact]
    public void Heartbeat_of_a_removed_server_says_it_is_gone()
    {
        using var connection = Connect();
        Assert.Throws<BackgroundServerGoneException>(() => connection.Heartbeat("nobody"));
    }

    [SkippableFact]
    public void Storage_clock_is_utc_now()
    {
        Requires(JobStorageFeatures.Connection.GetUtcDateTime);
        using var connection = Connect();
        Assert.InRange(connection.GetUtcDateTime(), DateTime.UtcNow.AddSeconds(-5), DateTime.UtcNow.AddSeconds(5));
    }

    // Locks

    [SkippableFact]
    public void Distributed_lock_is_reentrant_on_one_connection_and_exclusive_across_connections()
    {
        Applicable();
        using var first = Connect();
        using var second = Connect();
        var outer = first.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
        var inner = first.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));

        Assert.Throws<DistributedLockTimeoutException>(() => second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100)));
        inner.Dispose();
        Assert.Throws<DistributedLockTimeoutException>(() => second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100)));
        outer.Dispose();
        second.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1)).Dispose();
        using (second.AcquireDistributedLock("other", TimeSpan.FromSeconds(1))) { }
    }

    [SkippableFact]
    public async Task Waiting_lock_is_granted_when_the_holder_releases_it()
    {
        using var first = Connect();
        using var second = Connect();
        var held = first.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
        var waiter = Task.Run(() => second.AcquireDistributedLock("resource", TimeSpan.FromSeconds(10)));
        await Task.Delay(100);
        Assert.False(waiter.IsCompleted);
        held.Dispose();
        (await waiter.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [SkippableFact]
    public void Transaction_lock_is_held_from_acquire_until_the_commit_ends()
    {
        Requires(JobStorageFeatures.Transaction.AcquireDistributedLock);
        using var first = Connect();
        using var second = Connect();
        using (var tx = (JobStorageTransaction)first.CreateWriteTransaction())
        {
            tx.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
            tx.AddToSet("s", "v");
            Assert.Throws<DistributedLockTimeoutException>(() => second.AcquireDistributedLock("resource", TimeSpan.FromMilliseconds(100)));
            tx.Commit();
            second.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1)).Dispose();
        }
        Assert.Equal(1, first.GetSetCount("s"));
    }

    [SkippableFact]
    public void Transaction_lock_is_released_when_the_transaction_is_disposed_uncommitted()
    {
        Requires(JobStorageFeatures.Transaction.AcquireDistributedLock);
        using var first = Connect();
        using var second = Connect();
        using (var tx = (JobStorageTransaction)first.CreateWriteTransaction())
        {
            tx.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1));
        }
        second.AcquireDistributedLock("resource", TimeSpan.FromSeconds(1)).Dispose();
    }

    // Queues

    [SkippableFact]
    public void Fetch_returns_enqueued_jobs_first_in_first_out()
    {
        using var connection = Connect();
        var ids = Enumerable.Range(0, 3).Select(_ => Enqueue(connection, "default")).ToList();

        var fetched = ids.Select(_ => connection.FetchNextJob(["default"], Cancel(1000))).ToList();

        Assert.Equal(ids, fetched.Select(f => f.JobId));
        foreach (var job in fetched) job.RemoveFromQueue();
    }

    [SkippableFact]
    public void Fetch_waits_until_cancelled_when_the_queue_is_empty()
    {
        using var connection = Connect();
        Enqueue(connection, "other");
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["default"], Cancel(200)));
    }

    [SkippableFact]
    public async Task Fetch_wakes_up_when_a_job_is_enqueued_meanwhile()
    {
        using var connection = Connect();
        var fetcher = Task.Run(() => Connect().FetchNextJob(["default"], Cancel(10_000)));
        await Task.Delay(200);
        var id = Enqueue(connection, "default");
        var fetched = await fetcher.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(id, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public void Fetch_takes_from_any_of_the_given_queues()
    {
        using var connection = Connect();
        var id = Enqueue(connection, "second");
        using var fetched = connection.FetchNextJob(["first", "second"], Cancel(1000));
        Assert.Equal(id, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public void Fetched_job_is_not_handed_out_twice_and_acknowledged_job_is_gone()
    {
        using var connection = Connect();
        var id = Enqueue(connection, "default");
        var monitor = Storage.GetMonitoringApi();

        var fetched = connection.FetchNextJob(["default"], Cancel(1000));
        Assert.Equal(0, monitor.EnqueuedCount("default"));
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["default"], Cancel(200)));

        fetched.RemoveFromQueue();
        fetched.Dispose();
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["default"], Cancel(200)));
        Assert.Equal(id, fetched.JobId);
    }

    [SkippableFact]
    public void Requeued_job_is_fetched_again()
    {
        using var connection = Connect();
        var id = Enqueue(connection, "default");

        connection.FetchNextJob(["default"], Cancel(1000)).Requeue();
        using var again = connection.FetchNextJob(["default"], Cancel(1000));
        Assert.Equal(id, again.JobId);
        again.RemoveFromQueue();
    }

    [SkippableFact]
    public void Acknowledge_in_a_transaction_removes_the_job_with_the_commit()
    {
        using var connection = Connect();
        Enqueue(connection, "default");
        var fetched = connection.FetchNextJob(["default"], Cancel(1000));
        Applicable();
        using (var tx = (JobStorageTransaction)connection.CreateWriteTransaction())
        {
            tx.RemoveFromQueue(fetched);
            tx.Commit();
        }
        fetched.Dispose();
        Assert.Equal(0, Storage.GetMonitoringApi().FetchedCount("default"));
        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["default"], Cancel(200)));
    }

    [SkippableFact]
    public async Task Concurrent_fetchers_never_claim_the_same_job()
    {
        using var connection = Connect();
        var ids = Enumerable.Range(0, 40).Select(_ => Enqueue(connection, "default")).ToHashSet();
        var claimed = new System.Collections.Concurrent.ConcurrentBag<string>();

        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            using var own = Connect();
            while (true)
            {
                IFetchedJob job;
                try { job = own.FetchNextJob(["default"], Cancel(300)); }
                catch (OperationCanceledException) { return; }
                claimed.Add(job.JobId);
                job.RemoveFromQueue();
                job.Dispose();
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(ids.Count, claimed.Count);
        Assert.Equal(ids, claimed.ToHashSet());
    }

    // Monitoring

    [SkippableFact]
    public void Monitoring_lists_jobs_by_state_with_their_state_data()
    {
        Requires(JobStorageFeatures.Monitoring.AwaitingJobs);
        using var connection = Connect();
        var enqueued = Enqueue(connection, "default");
        var processing = CreateJob(connection);
        var succeeded = CreateJob(connection);
        var failed = CreateJob(connection);
        var deleted = CreateJob(connection);
        var scheduled = CreateJob(connection);
        var awaiting = CreateJob(connection);
        Commit(tx =>
        {
            tx.SetJobState(processing, Processing("server-1"));
            tx.SetJobState(succeeded, new SucceededState("42", 10, 20));
            tx.SetJobState(failed, new FailedState(new InvalidOperationException("boom")));
            tx.SetJobState(deleted, new DeletedState());
            tx.SetJobState(scheduled, new ScheduledState(TimeSpan.FromHours(1)));
            tx.SetJobState(awaiting, new AwaitingState(enqueued));
        });
        var monitor = (JobStorageMonitor)Storage.GetMonitoringApi();

        var queued = Assert.Single(monitor.EnqueuedJobs("default", 0, 10));
        Assert.Equal(enqueued, queued.Key);
        Assert.True(queued.Value.InEnqueuedState);
        Assert.NotNull(queued.Value.EnqueuedAt);

        Assert.Equal("server-1", Assert.Single(monitor.ProcessingJobs(0, 10)).Value.ServerId);
        var success = Assert.Single(monitor.SucceededJobs(0, 10));
        Assert.Equal(succeeded, success.Key);
        Assert.Equal(30, success.Value.TotalDuration);
        var failure = Assert.Single(monitor.FailedJobs(0, 10));
        Assert.Equal("boom", failure.Value.ExceptionMessage);
        Assert.NotNull(failure.Value.FailedAt);
        Assert.Equal(deleted, Assert.Single(monitor.DeletedJobs(0, 10)).Key);
        Assert.Equal(scheduled, Assert.Single(monitor.ScheduledJobs(0, 10)).Key);
        var waiting = Assert.Single(monitor.AwaitingJobs(0, 10));
        Assert.Equal(EnqueuedState.StateName, waiting.Value.ParentStateName);

        Assert.Equal(1, monitor.ProcessingCount());
        Assert.Equal(1, monitor.SucceededListCount());
        Assert.Equal(1, monitor.FailedCount());
        Assert.Equal(1, monitor.DeletedListCount());
        Assert.Equal(1, monitor.ScheduledCount());
        Assert.Equal(1, monitor.AwaitingCount());
    }

    [SkippableFact]
    public void Monitoring_pages_state_lists()
    {
        using var connection = Connect();
        var ids = Enumerable.Range(0, 5).Select(_ => CreateJob(connection)).ToList();
        Commit(tx => { foreach (var id in ids) tx.SetJobState(id, new SucceededState(null, 1, 1)); });
        var monitor = Storage.GetMonitoringApi();

        var firstPage = monitor.SucceededJobs(0, 3).Select(j => j.Key).ToList();
        var secondPage = monitor.SucceededJobs(3, 3).Select(j => j.Key).ToList();
        Assert.Equal(3, firstPage.Count);
        Assert.Equal(2, secondPage.Count);
        Assert.Equal(ids.ToHashSet(), firstPage.Concat(secondPage).ToHashSet());
    }

    [SkippableFact]
    public void Monitoring_shows_queues_with_their_waiting_jobs()
    {
        using var connection = Connect();
        Enqueue(connection, "default");
        var second = Enqueue(connection, "default");
        Enqueue(connection, "other");
        using var fetched = connection.FetchNextJob(["default"], Cancel(1000));
        var monitor = Storage.GetMonitoringApi();

        var queues = monitor.Queues().OrderBy(q => q.Name).ToList();
        Assert.Equal(new[] { "default", "other" }, queues.Select(q => q.Name));
        Assert.Equal(1, queues[0].Length);
        Assert.Equal(second, Assert.Single(queues[0].FirstJobs).Key);
        Assert.Equal(1, queues[1].Length);
        fetched.RemoveFromQueue();
    }

    [SkippableFact]
    public void Monitoring_statistics_count_states_sets_and_counters()
    {
        Applicable();
        using var connection = Connect();
        Enqueue(connection, "default");
        var failed = CreateJob(connection);
        Commit(tx =>
        {
            tx.SetJobState(failed, new FailedState(new InvalidOperationException("x")));
            tx.IncrementCounter("stats:succeeded");
            tx.IncrementCounter("stats:succeeded");
            tx.IncrementCounter("stats:deleted");
            tx.AddToSet("recurring-jobs", "a");
            tx.AddToSet("retries", "1");
        });

        var stats = Storage.GetMonitoringApi().GetStatistics();
        Assert.Equal(1, stats.Enqueued);
        Assert.Equal(1, stats.Failed);
        Assert.Equal(2, stats.Succeeded);
        Assert.Equal(1, stats.Deleted);
        Assert.Equal(1, stats.Recurring);
        Assert.Equal(1, stats.Retries);
        Assert.Equal(1, stats.Queues);
    }

    [SkippableFact]
    public void Monitoring_graphs_read_the_daily_and_hourly_counters()
    {
        Requires(JobStorageFeatures.Monitoring.DeletedStateGraphs);
        var now = DateTime.UtcNow;
        Commit(tx =>
        {
            tx.IncrementCounter($"stats:succeeded:{now:yyyy-MM-dd}");
            tx.IncrementCounter($"stats:failed:{now:yyyy-MM-dd-HH}");
            tx.IncrementCounter($"stats:failed:{now:yyyy-MM-dd-HH}");
        });
        var monitor = (JobStorageMonitor)Storage.GetMonitoringApi();

        var daily = monitor.SucceededByDatesCount();
        Assert.Equal(7, daily.Count);
        Assert.Equal(1, daily[now.Date]);
        var hourly = monitor.HourlyFailedJobs();
        Assert.Equal(24, hourly.Count);
        Assert.Equal(2, hourly.Single(h => h.Key.Date == now.Date && h.Key.Hour == now.Hour).Value);
        Assert.Equal(24, monitor.HourlyDeletedJobs().Count);
        Assert.Equal(7, monitor.DeletedByDatesCount().Count);
    }

    [SkippableFact]
    public void Job_details_show_parameters_and_history_newest_first()
    {
        using var connection = Connect();
        var id = CreateJob(connection, new Dictionary<string, string> { ["UserId"] = "\"alice\"" });
        Commit(tx => tx.SetJobState(id, new EnqueuedState("default")));
        Commit(tx => tx.SetJobState(id, Processing("s")));

        var details = Storage.GetMonitoringApi().JobDetails(id)!;
        Assert.Equal("\"alice\"", details.Properties["UserId"]);
        Assert.Equal(new[] { ProcessingState.StateName, EnqueuedState.StateName }, details.History.Select(h => h.StateName));
        Assert.NotNull(details.Job);
    }

    // Guards and features

    [SkippableFact]
    public void Null_keys_are_refused()
    {
        Applicable();
        using var connection = Connect();
        Assert.Throws<ArgumentNullException>(() => connection.GetAllItemsFromSet(null!));
        Assert.Throws<ArgumentNullException>(() => connection.GetAllEntriesFromHash(null!));
        Assert.Throws<ArgumentNullException>(() => connection.GetJobData(null!));
        Assert.Throws<ArgumentNullException>(() => connection.AcquireDistributedLock(null!, TimeSpan.FromSeconds(1)));
        using var tx = connection.CreateWriteTransaction();
        Assert.Throws<ArgumentNullException>(() => tx.AddToSet(null!, "v"));
        Assert.Throws<ArgumentNullException>(() => tx.IncrementCounter(null!));
    }

    [SkippableTheory]
    [InlineData("Storage.ExtendedApi")]
    [InlineData("Job.Queue")]
    [InlineData("Connection.GetUtcDateTime")]
    [InlineData("Connection.GetSetContains")]
    [InlineData("Connection.GetSetCount.Limited")]
    [InlineData("Connection.BatchedGetFirstByLowestScoreFromSet")]
    [InlineData("BatchedGetFirstByLowestScoreFromSet")]
    [InlineData("Transaction.AcquireDistributedLock")]
    [InlineData("Transaction.CreateJob")]
    [InlineData("Transaction.SetJobParameter")]
    [InlineData("Monitoring.DeletedStateGraphs")]
    [InlineData("Monitoring.AwaitingJobs")]
    public void Advertises_the_features_it_implements(string feature)
    {
        Applicable();
        Assert.True(Storage.HasFeature(feature));
    }

    // Helpers

    protected JobStorageConnection Connect() => (JobStorageConnection)Storage.GetConnection();

    protected static CancellationToken Cancel(int milliseconds) => new CancellationTokenSource(milliseconds).Token;

    protected static string CreateJob(IStorageConnection connection, IDictionary<string, string>? parameters = null) =>
        connection.CreateExpiredJob(Job.FromExpression(() => SampleJobs.Noop()), parameters ?? new Dictionary<string, string>(), DateTime.UtcNow, TimeSpan.FromHours(1));

    protected string Enqueue(IStorageConnection connection, string queue, IDictionary<string, string>? parameters = null)
    {
        var id = CreateJob(connection, parameters);
        Commit(tx =>
        {
            tx.SetJobState(id, new EnqueuedState(queue));
            tx.AddToQueue(queue, id);
        });
        return id;
    }

    protected void Commit(Action<IWriteOnlyTransaction> write)
    {
        using var connection = Connect();
        using var tx = connection.CreateWriteTransaction();
        write(tx);
        tx.Commit();
    }

    /// <summary>Hangfire's ProcessingState cannot be built outside Hangfire; this one carries the same data.</summary>
    protected static IState Processing(string serverId) => new TestState(ProcessingState.StateName, new()
    {
        ["ServerId"] = serverId,
        ["WorkerId"] = "worker-1",
        ["StartedAt"] = JobHelper.SerializeDateTime(DateTime.UtcNow),
    });

    private sealed class TestState(string name, Dictionary<string, string> data) : IState
    {
        public string Name => name;
        public string? Reason => null;
        public bool IsFinal => false;
        public bool IgnoreJobLoadException => false;
        public Dictionary<string, string> SerializeData() => data;
    }

    /// <summary>A state whose data cannot be produced: a fault injected into the middle of a commit.</summary>
    private sealed class ExplodingState : IState
    {
        public string Name => "Exploding";
        public string? Reason => null;
        public bool IsFinal => false;
        public bool IgnoreJobLoadException => false;
        public Dictionary<string, string> SerializeData() => throw new InvalidOperationException("injected fault");
    }
}
