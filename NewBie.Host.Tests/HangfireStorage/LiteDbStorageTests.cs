using System.Diagnostics;
using Hangfire;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;
using Hangfire.Storage;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>What LiteDbStorage promises beyond Hangfire's contract: durability, ownership, recovery and fairness.</summary>
public sealed class LiteDbStorageTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly List<LiteDbStorage> _opened = [];

    private string DbPath => Path.Combine(_folder.Path, "hangfire.db");

    public void Dispose()
    {
        foreach (var storage in _opened) storage.Dispose();
        _folder.Dispose();
    }

    // Durability and ownership

    [Fact]
    public void The_file_checkpoints_its_log_every_ten_thousand_pages_not_every_thousand()
    {
        new LiteDbStorage(DbPath).Dispose();

        using var file = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = DbPath, Connection = LiteDB.ConnectionType.Direct });
        Assert.Equal(LiteDbStorage.CheckpointPages, file.CheckpointSize);
        Assert.Equal(10_000, file.CheckpointSize);
    }

    [Fact]
    public void Data_survives_dispose_and_reopen()
    {
        string id;
        using (var storage = new LiteDbStorage(DbPath))
        {
            using var connection = Connect(storage);
            id = Enqueue(storage, "default", new() { ["P"] = "\"x\"" });
            Commit(storage, tx =>
            {
                tx.AddToSet("s", "v", 2);
                tx.IncrementCounter("c");
                tx.InsertToList("l", "v");
                tx.SetRangeInHash("h", [new("f", "v")]);
            });
        }

        using var reopened = Open();
        using var again = Connect(reopened);
        Assert.Equal(EnqueuedState.StateName, again.GetStateData(id)!.Name);
        Assert.Equal("\"x\"", again.GetJobParameter(id, "P"));
        Assert.Equal(new[] { "v" }, again.GetRangeFromSet("s", 0, 0));
        Assert.Equal(1, again.GetCounter("c"));
        Assert.Equal(new[] { "v" }, again.GetAllItemsFromList("l"));
        Assert.Equal("v", again.GetValueFromHash("h", "f"));
        using var fetched = again.FetchNextJob(["default"], Cancel(1000));
        Assert.Equal(id, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [Fact]
    public void Job_ids_are_not_reused_after_the_newest_job_expired_and_the_file_was_reopened()
    {
        string first;
        using (var storage = new LiteDbStorage(DbPath))
        {
            using var connection = Connect(storage);
            first = CreateJob(connection);
            Commit(storage, tx => tx.ExpireJob(first, TimeSpan.Zero));
            Thread.Sleep(5);
            storage.RemoveExpired(DateTime.UtcNow);
        }
        using var reopened = Open();
        using var again = Connect(reopened);
        Assert.NotEqual(first, CreateJob(again));
    }

    [Fact]
    public void Second_storage_on_the_same_file_is_refused_with_a_message_naming_the_path()
    {
        Open();
        var refused = Assert.Throws<StorageInUseException>(() => new LiteDbStorage(DbPath));
        Assert.Contains(Path.GetFullPath(DbPath), refused.Message);
    }

    [Fact]
    public void Storage_held_by_another_process_is_refused()
    {
        if (!File.Exists("/usr/bin/flock")) return; // the other process is util-linux flock(1), which takes the same lock .NET does
        Directory.CreateDirectory(_folder.Path);
        using var holder = Process.Start(new ProcessStartInfo("/usr/bin/flock", ["--exclusive", "--close", DbPath + ".lock", "sleep", "30"]))!;
        try
        {
            var refused = WaitUntilRefused();
            Assert.Contains(Path.GetFullPath(DbPath), refused.Message);
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
        }
        Open().Dispose();
    }

    [Fact]
    public void Disposed_storage_releases_the_file_for_the_next_owner()
    {
        Open().Dispose();
        Open();
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LiteDbStorage(DbPath, new LiteDbStorageOptions { QueuePollInterval = TimeSpan.Zero }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LiteDbStorage(DbPath, new LiteDbStorageOptions { JobExpirationCheckInterval = TimeSpan.Zero }));
        Open().Dispose(); // a refused construction leaves the file free
    }

    // Fetched jobs and crash recovery

    [Fact]
    public void Job_fetched_when_the_process_died_is_fetched_again_on_reopen()
    {
        string id;
        var storage = new LiteDbStorage(DbPath);
        using (var connection = Connect(storage))
        {
            id = Enqueue(storage, "gpu");
            var fetched = connection.FetchNextJob(["gpu"], Cancel(1000));
            Assert.Equal(new[] { id }, storage.GetFetchedJobIds("gpu"));
            // The process "dies": the row stays fetched on disk, nobody acknowledges or requeues it.
            GC.KeepAlive(fetched);
        }
        storage.Dispose();

        var reopened = Open();
        Assert.Empty(reopened.GetFetchedJobIds("gpu"));
        Assert.Equal(id, Assert.Single(reopened.GetFairQueue("gpu")).JobId);
        using var again = Connect(reopened).FetchNextJob(["gpu"], Cancel(1000));
        Assert.Equal(id, again.JobId);
    }

    [Fact]
    public void Disposing_an_unacknowledged_fetched_job_puts_it_back()
    {
        var storage = Open();
        using var connection = Connect(storage);
        var id = Enqueue(storage, "default");

        connection.FetchNextJob(["default"], Cancel(1000)).Dispose();

        using var again = connection.FetchNextJob(["default"], Cancel(1000));
        Assert.Equal(id, again.JobId);
        again.RemoveFromQueue();
    }

    [Fact]
    public void Stale_handle_cannot_remove_a_job_that_was_requeued_and_fetched_again()
    {
        var storage = Open();
        using var connection = Connect(storage);
        var id = Enqueue(storage, "default");
        var stale = connection.FetchNextJob(["default"], Cancel(1000));
        stale.Requeue();
        using var current = connection.FetchNextJob(["default"], Cancel(1000));

        stale.RemoveFromQueue();

        Assert.Equal(new[] { id }, storage.GetFetchedJobIds("default"));
        current.RemoveFromQueue();
        Assert.Empty(storage.GetFetchedJobIds("default"));
    }

    [Fact]
    public void Monitoring_lists_fetched_jobs_and_advertises_transactional_acknowledge()
    {
        var storage = Open();
        using var connection = Connect(storage);
        Enqueue(storage, "default");
        using var fetched = connection.FetchNextJob(["default"], Cancel(1000));
        var monitor = storage.GetMonitoringApi();

        Assert.Equal(1, monitor.FetchedCount("default"));
        var listed = Assert.Single(monitor.FetchedJobs("default", 0, 10));
        Assert.Equal(fetched.JobId, listed.Key);
        Assert.NotNull(listed.Value.FetchedAt);
        Assert.True(storage.HasFeature(JobStorageFeatures.Transaction.RemoveFromQueue(fetched.GetType())));
        fetched.RemoveFromQueue();
        Assert.Equal(0, monitor.FetchedCount("default"));
    }

    // Expiration

    [Fact]
    public void Expiration_manager_deletes_what_has_expired_and_keeps_the_rest()
    {
        var storage = Open();
        using var connection = Connect(storage);
        var expired = CreateJob(connection);
        var kept = CreateJob(connection);
        Commit(storage, tx =>
        {
            tx.SetJobState(expired, new SucceededState(null, 0, 0));
            tx.ExpireJob(expired, TimeSpan.FromMilliseconds(1));
            tx.PersistJob(kept);
            tx.AddToSet("s", "v");
            tx.InsertToList("l", "v");
            tx.SetRangeInHash("h", [new("f", "v")]);
            tx.IncrementCounter("c", TimeSpan.FromMilliseconds(1));
            tx.IncrementCounter("forever");
            var t = (JobStorageTransaction)tx;
            t.ExpireSet("s", TimeSpan.FromMilliseconds(1));
            t.ExpireList("l", TimeSpan.FromMilliseconds(1));
            t.ExpireHash("h", TimeSpan.FromMilliseconds(1));
            tx.AddToSet("lasting", "v");
        });
        Thread.Sleep(20);

        RunExpirationManagerOnce(storage);

        Assert.Null(connection.GetJobData(expired));
        Assert.Null(storage.GetMonitoringApi().JobDetails(expired));
        Assert.NotNull(connection.GetJobData(kept));
        Assert.Equal(0, connection.GetSetCount("s"));
        Assert.Equal(0, connection.GetListCount("l"));
        Assert.Null(connection.GetAllEntriesFromHash("h"));
        Assert.Equal(0, connection.GetCounter("c"));
        Assert.Equal(1, connection.GetCounter("forever"));
        Assert.Equal(1, connection.GetSetCount("lasting"));
    }

    // Fair dequeue beyond the contract (FairQueueContract): other queues, restarts

    [Fact]
    public void Pausing_one_queue_leaves_the_others_claimable()
    {
        var storage = Open();
        Enqueue(storage, "gpu", Fair("A"));
        var other = Enqueue(storage, "default");
        storage.PauseQueue("gpu");
        using var connection = Connect(storage);

        using var fetched = connection.FetchNextJob(["gpu", "default"], Cancel(1000));

        Assert.Equal(other, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [Fact]
    public void A_fetcher_that_finds_only_a_paused_queue_says_it_waits_and_one_that_claims_does_not()
    {
        var storage = Open();
        var waiting = new List<string[]>();
        storage.FetcherWaiting += queues => { lock (waiting) waiting.Add(queues); };
        var id = Enqueue(storage, "gpu", Fair("A"));
        storage.PauseQueue("gpu");
        using var connection = Connect(storage);

        Assert.ThrowsAny<OperationCanceledException>(() => connection.FetchNextJob(["gpu"], Cancel(200)));
        var whilePaused = waiting.Count;
        storage.ResumeQueue("gpu");
        using var fetched = connection.FetchNextJob(["gpu"], Cancel(1000));

        // The poll interval is a minute: the one look before the wait raised it once.
        Assert.Equal(1, whilePaused);
        Assert.Equal(new[] { "gpu" }, waiting.Single());
        Assert.Equal(id, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [Fact]
    public void Other_queues_are_first_in_first_out_whatever_the_parameters()
    {
        var storage = Open();
        var first = Enqueue(storage, "default", Fair("A", priority: 0));
        var second = Enqueue(storage, "default", Fair("B", priority: 2));

        Assert.Equal(new[] { first, second }, ClaimAll(storage, "default"));
    }

    [Fact]
    public void Fair_turns_survive_a_restart()
    {
        var storage = Open();
        Enqueue(storage, "gpu", Fair("A"));
        Enqueue(storage, "gpu", Fair("A"));
        var b = Enqueue(storage, "gpu", Fair("B"));
        Claim(storage, "gpu", 1); // A was served last, so B is next
        storage.Dispose();
        _opened.Remove(storage);

        var reopened = Open();
        Assert.Equal(b, reopened.GetFairQueue("gpu")[0].JobId);
        Assert.Equal(b, Claim(reopened, "gpu", 1).Single());
    }

    [Fact]
    public void Enqueueing_a_job_that_expired_meanwhile_does_not_fail_the_commit()
    {
        var storage = Open();
        using var connection = Connect(storage);
        var gone = CreateJob(connection);
        Commit(storage, tx => tx.ExpireJob(gone, TimeSpan.Zero));
        Thread.Sleep(5);
        storage.RemoveExpired(DateTime.UtcNow);

        Commit(storage, tx =>
        {
            tx.SetJobState(gone, new EnqueuedState("gpu"));
            tx.AddToQueue("gpu", gone);
            tx.AddToSet("s", "written");
        });

        Assert.True(connection.GetSetContains("s", "written"));
        Assert.Null(connection.GetJobData(gone));
        Assert.Equal(gone, Assert.Single(storage.GetFairQueue("gpu")).JobId);
    }

    // Helpers

    private LiteDbStorage Open()
    {
        var storage = new LiteDbStorage(DbPath, new LiteDbStorageOptions { QueuePollInterval = TimeSpan.FromMinutes(1) });
        _opened.Add(storage);
        return storage;
    }

    private StorageInUseException WaitUntilRefused()
    {
        // flock(1) needs a moment to start and take the lock.
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                new LiteDbStorage(DbPath).Dispose();
            }
            catch (StorageInUseException e)
            {
                return e;
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException("the other process never took the lock");
            Thread.Sleep(50);
        }
    }

    private static void RunExpirationManagerOnce(LiteDbStorage storage)
    {
        using var stopped = new CancellationTokenSource();
        stopped.Cancel(); // so that the process's wait for the next sweep returns at once
        var manager = Assert.Single(storage.GetStorageWideProcesses());
        try
        {
            manager.Execute(new BackgroundProcessContext("test-server", storage, new Dictionary<string, object>(), Guid.NewGuid(), stopped.Token, stopped.Token, stopped.Token));
        }
        catch (OperationCanceledException)
        {
            // The sweep ran; the wait for the next one ends as a stopping Hangfire server's would.
        }
    }

    private static JobStorageConnection Connect(LiteDbStorage storage) => (JobStorageConnection)storage.GetConnection();

    private static CancellationToken Cancel(int milliseconds) => new CancellationTokenSource(milliseconds).Token;

    private static Dictionary<string, string> Fair(string user, int priority = 1, long? seq = null)
    {
        var parameters = new Dictionary<string, string>
        {
            [FairQueueParameters.UserId] = SerializationHelper.Serialize(user, SerializationOption.User),
            [FairQueueParameters.Priority] = SerializationHelper.Serialize(priority, SerializationOption.User),
        };
        if (seq != null) parameters[FairQueueParameters.Seq] = SerializationHelper.Serialize(seq.Value, SerializationOption.User);
        return parameters;
    }

    private static string CreateJob(IStorageConnection connection, Dictionary<string, string>? parameters = null) =>
        connection.CreateExpiredJob(Job.FromExpression(() => SampleJobs.Noop()), parameters ?? [], DateTime.UtcNow, TimeSpan.FromHours(1));

    private static string Enqueue(LiteDbStorage storage, string queue, Dictionary<string, string>? parameters = null)
    {
        using var connection = storage.GetConnection();
        var id = CreateJob(connection, parameters);
        Commit(storage, tx =>
        {
            tx.SetJobState(id, new EnqueuedState(queue));
            tx.AddToQueue(queue, id);
        });
        return id;
    }

    private static void Commit(LiteDbStorage storage, Action<IWriteOnlyTransaction> write)
    {
        using var connection = storage.GetConnection();
        using var tx = connection.CreateWriteTransaction();
        write(tx);
        tx.Commit();
    }

    private static List<string> Claim(LiteDbStorage storage, string queue, int count)
    {
        using var connection = storage.GetConnection();
        var claimed = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var job = connection.FetchNextJob([queue], Cancel(1000));
            claimed.Add(job.JobId);
            job.RemoveFromQueue();
        }
        return claimed;
    }

    private static List<string> ClaimAll(LiteDbStorage storage, string queue) => Claim(storage, queue, storage.GetFairQueue(queue).Count);
}
