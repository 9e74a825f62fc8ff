using NewBie.Host.Jobs;
using NewBie.Host.Storage.Postgres;

namespace NewBie.Host.Tests.Storage;

/// <summary>
/// What several nodes on one PostgreSQL rely on beyond the store contracts: caps and Idempotency-Keys exact when two
/// nodes (two data sources, two <see cref="JobStore"/>s) submit at once, no change of a job lost between nodes, and a
/// schema that two nodes starting together migrate once.
/// </summary>
public sealed class PostgresNodesTests : IDisposable
{
    // Created on first use, inside the test: created in the constructor, a missing PostgreSQL would fail the test
    // instead of skipping it.
    private readonly Lazy<PostgresTestDatabase> _database = new(PostgresCluster.CreateDatabase);

    private PostgresTestDatabase Db => _database.Value;

    private JobStore Node() => new(new PostgresJobRecords(new PostgresDatabase(Db.NewDataSource())));

    private static JobRecord Draft(string user, string? key = null, string hash = "h") => new()
    {
        Id = Guid.NewGuid().ToString("N"),
        UserId = user,
        Status = JobStatus.Queued,
        IdempotencyKey = key,
        RequestHash = hash,
        Params = new JobParams { Prompt = "p", Width = 256, Height = 256, Steps = 2, Count = 1 },
        CreatedAt = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc),
    };

    [SkippableFact]
    public void Concurrent_submits_of_one_user_on_two_nodes_never_pass_the_storage_cap()
    {
        var nodes = new[] { Node(), Node() };
        var largest = Draft("alice").Params.LargestBytes;
        // The shared count of alice's kept bytes (what every node's writes moved) is one job's worth; the cap leaves room
        // for three more jobs at their largest, and a half. The submits' own measure (0) must not be what counts.
        using (var kept = Db.NewDataSource().CreateCommand("INSERT INTO newbie_output_usage (user_id, bytes, version) VALUES ('alice', $1, 0)"))
        {
            kept.Parameters.Add(new Npgsql.NpgsqlParameter { Value = largest });
            kept.ExecuteNonQuery();
        }
        var cap = new StorageCap(largest + 3 * largest + largest / 2, UsedBytes: 0);
        var outcomes = new SubmitOutcome[40];

        Parallel.For(0, 40, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            outcomes[i] = nodes[i % 2].Insert(Draft("alice"), maxQueued: 1000, maxActiveOfUser: 1000, storageCap: cap).Outcome);

        Assert.Equal(3, outcomes.Count(o => o == SubmitOutcome.Created));
        Assert.Equal(37, outcomes.Count(o => o == SubmitOutcome.StorageCapExceeded));
    }

    [SkippableFact]
    public void Concurrent_submits_on_two_nodes_never_pass_the_per_user_or_the_queue_cap()
    {
        var nodes = new[] { Node(), Node() };
        var outcomes = new SubmitOutcome[120];
        var users = new string[120];
        Parallel.For(0, 120, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            users[i] = $"user{i % 10}";
            outcomes[i] = nodes[i % 2].Insert(Draft(users[i]), maxQueued: 30, maxActiveOfUser: 4).Outcome;
        });

        // 10 users × 4 would be 40: the queue cap of 30 is reached first, and no user passes 4.
        Assert.Equal(30, outcomes.Count(o => o == SubmitOutcome.Created));
        Assert.All(Enumerable.Range(0, 10), u => Assert.InRange(nodes[u % 2].CountActive($"user{u}"), 0, 4));
        Assert.Equal(30, nodes[0].CountQueued());
        Assert.Equal(30, nodes[1].CountQueued());
        var seqs = nodes[1].List(null, null, null, 1000).Select(j => j.Seq).ToList();
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), seqs.Order());
    }

    [SkippableFact]
    public void The_same_Idempotency_Key_submitted_on_two_nodes_at_once_makes_one_job()
    {
        var nodes = new[] { Node(), Node() };
        var results = new (SubmitOutcome Outcome, JobRecord? Job)[20];
        Parallel.For(0, 20, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => results[i] = nodes[i % 2].Insert(Draft("alice", key: "k1"), maxQueued: 100));

        Assert.Equal(1, results.Count(r => r.Outcome == SubmitOutcome.Created));
        Assert.Equal(19, results.Count(r => r.Outcome == SubmitOutcome.Replayed));
        Assert.Single(results.Select(r => r.Job!.Id).Distinct());
        Assert.Equal(SubmitOutcome.IdempotencyConflict, nodes[0].Insert(Draft("alice", key: "k1", hash: "other"), maxQueued: 100).Outcome);
    }

    [SkippableFact]
    public void Changes_of_one_job_from_two_nodes_at_once_are_all_kept()
    {
        var nodes = new[] { Node(), Node() };
        var (_, job) = nodes[0].Insert(Draft("alice"), maxQueued: 10);
        Parallel.For(0, 100, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => nodes[i % 2].Update(job!.Id, j =>
        {
            j.OomRetries++;
            return true;
        }));
        // A cancel from one node is not undone by the other node's progress report.
        nodes[0].Update(job!.Id, j => j.Start(DateTime.UtcNow, null));
        Parallel.Invoke(
            () => nodes[1].Update(job.Id, j => j.Cancel(DateTime.UtcNow, out _)),
            () => nodes[0].Update(job.Id, j => j.Report(Pipeline.GenerationStage.Denoising, 1, 2)));

        var read = nodes[1].Find(job.Id)!;
        Assert.Equal(100, read.OomRetries);
        Assert.True(read.CancelRequested);
        Assert.Equal(JobStatus.Running, read.Status);
    }

    [SkippableFact]
    public void A_node_sees_the_other_nodes_jobs_in_its_counts()
    {
        var (a, b) = (Node(), Node());
        a.Insert(Draft("alice"), maxQueued: 10);
        var (_, running) = a.Insert(Draft("alice"), maxQueued: 10);
        a.Update(running!.Id, j => j.Start(DateTime.UtcNow, null));

        Assert.Equal(1, b.CountQueued());
        Assert.Equal(2, b.CountActive("alice"));
        Assert.Equal(2 * running.Params.LargestBytes, b.ActiveImageBytes("alice"));
        Assert.Equal(SubmitOutcome.UserQueueFull, b.Insert(Draft("alice"), maxQueued: 10, maxActiveOfUser: 2).Outcome);
        Assert.Equal(SubmitOutcome.QueueFull, b.Insert(Draft("bob"), maxQueued: 1).Outcome);
    }

    [SkippableFact]
    public async Task A_job_claimed_on_another_node_while_its_submit_is_under_way_is_found_there()
    {
        var (a, b) = (Node(), Node());
        var queued = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var commit = new ManualResetEventSlim();
        // Node A's submit queues the job's Hangfire job (beforeInsert) and then stores the record.
        var submit = Task.Run(() => a.Insert(Draft("alice"), maxQueued: 10, beforeInsert: j =>
        {
            queued.SetResult(j.Id);
            commit.Wait();
        }));
        var id = await queued.Task;

        // Node B's worker claims that Hangfire job at once: its reads of the record wait for the submit, not miss it.
        var claim = Task.Run(() => b.Update(id, j => j.Start(DateTime.UtcNow, null)));
        var read = Task.Run(() => b.Find(id));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (WaitersOnSubmitLock() < 2 && !claim.IsCompleted && !read.IsCompleted)
        {
            Assert.True(DateTime.UtcNow < deadline, "node B's reads neither waited nor returned");
            await Task.Delay(10);
        }
        commit.Set();

        Assert.Equal(SubmitOutcome.Created, (await submit).Outcome);
        Assert.Equal(JobStatus.Running, (await claim)?.Status);
        Assert.Equal(id, (await read)?.Id);
    }

    private long WaitersOnSubmitLock()
    {
        using var locks = Db.NewDataSource().CreateCommand(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2");
        locks.Parameters.Add(new Npgsql.NpgsqlParameter { Value = (long)PostgresSchema.LockClass });
        locks.Parameters.Add(new Npgsql.NpgsqlParameter { Value = (long)PostgresSchema.SubmitLock });
        return (long)locks.ExecuteScalar()!;
    }

    [SkippableFact]
    public void Nodes_starting_together_migrate_the_schema_once()
    {
        var versions = new int[4];
        Parallel.For(0, 4, i => versions[i] = PostgresSchema.Migrate(Db.NewDataSource()));

        Assert.Equal(3, versions.Count(v => v == PostgresSchema.Latest));
        Assert.Equal(1, versions.Count(v => v == 0));
        using var rows = Db.NewDataSource().CreateCommand("SELECT array_agg(version ORDER BY version) FROM newbie_schema_version");
        Assert.Equal(Enumerable.Range(1, PostgresSchema.Latest), (int[])rows.ExecuteScalar()!);
    }

    public void Dispose()
    {
        if (_database.IsValueCreated) _database.Value.Dispose();
    }
}
