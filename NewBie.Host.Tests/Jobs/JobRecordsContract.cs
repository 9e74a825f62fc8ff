using NewBie.Host.Jobs;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Jobs;

/// <summary>
/// What every <see cref="IJobRecords"/> must do. Another implementation (PostgreSQL) runs these very tests by deriving
/// a class that passes its factory, as <see cref="LiteDbJobRecordsTests"/> does.
/// </summary>
public abstract class JobRecordsContract(Func<IJobRecords> factory, IDisposable? resources) : StoreContract<IJobRecords>(factory, resources)
{
    private static JobRecord Job(string id, string user, long seq, JobStatus status = JobStatus.Queued) => new()
    {
        Id = id,
        UserId = user,
        Seq = seq,
        Status = status,
        Params = new JobParams { Prompt = $"prompt {id}", Width = 256, Height = 256, Steps = 2, Count = 1, Seed = seq },
        CreatedAt = At(1),
    };

    [SkippableFact]
    public void An_inserted_record_reads_back_whole_from_another_instance()
    {
        var job = Job("a1", "alice", 1);
        job.Params.Prompt = "  keeps spaces and \"quotes\"  ";
        job.Params.NegativePrompt = "";
        job.IdempotencyKey = "k1";
        job.Images = [new JobImage { Index = 0, Width = 256, Height = 256, Seed = 1, File = "u/a1/0.png" }];
        Store.Insert(job);

        var read = Another().Find("a1")!;

        Assert.Equal("alice", read.UserId);
        Assert.Equal("  keeps spaces and \"quotes\"  ", read.Params.Prompt);
        Assert.Equal("", read.Params.NegativePrompt);
        Assert.Equal(At(1), read.CreatedAt);
        Assert.Equal(DateTimeKind.Utc, read.CreatedAt.Kind);
        Assert.Equal("u/a1/0.png", Assert.Single(read.Images).File);
        Assert.Null(Store.Find("nope"));
    }

    [SkippableFact]
    public void Updates_and_deletes_are_seen_by_the_next_read()
    {
        Store.Insert(Job("a1", "alice", 1));
        var job = Store.Find("a1")!;
        Assert.True(job.Start(At(1, 13), null));
        Store.Update(job);

        Assert.Equal(JobStatus.Running, Another().Find("a1")!.Status);
        Store.Delete("a1");
        Assert.Null(Another().Find("a1"));
    }

    [SkippableFact]
    public void Idempotency_keys_and_hangfire_ids_match_exactly_and_per_user()
    {
        var alice = Job("a1", "alice", 1);
        alice.IdempotencyKey = "K1";
        alice.HangfireJobId = "17";
        Store.Insert(alice);

        Assert.Equal("a1", Store.FindByIdempotencyKey("alice", "K1")?.Id);
        Assert.Null(Store.FindByIdempotencyKey("alice", "k1"));
        Assert.Null(Store.FindByIdempotencyKey("bob", "K1"));
        Assert.Equal("a1", Store.FindByHangfireJob("17")?.Id);
        Assert.Null(Store.FindByHangfireJob("170"));
    }

    [SkippableFact]
    public void Statuses_and_pages_come_in_submit_order()
    {
        Store.Insert(Job("a3", "alice", 3));
        Store.Insert(Job("b2", "bob", 2, JobStatus.Running));
        Store.Insert(Job("a1", "alice", 1));
        Store.Insert(Job("a4", "alice", 4, JobStatus.Succeeded));

        Assert.Equal(4, Store.LastSeq());
        Assert.Equal(new[] { "a1", "a3" }, Store.WithStatus(JobStatus.Queued).Select(j => j.Id));
        Assert.Equal(new[] { "a4", "a3", "a1" }, Store.Page("alice", null, null, 10).Select(j => j.Id));
        Assert.Equal(new[] { "a3" }, Store.Page("alice", null, 4, 1).Select(j => j.Id));
        Assert.Equal(new[] { "a3", "a1" }, Store.Page("alice", JobStatus.Queued, null, 10).Select(j => j.Id));
        Assert.Equal(new[] { "a4", "a3", "b2", "a1" }, Store.Page(null, null, null, 10).Select(j => j.Id));
    }

    [SkippableFact]
    public void A_users_pages_hold_only_that_users_jobs_newest_first_and_follow_status_changes()
    {
        // Names that are prefixes of one another, and sequences of different lengths (9 < 10 < 100 as numbers).
        var seq = 0L;
        foreach (var (user, count) in new[] { ("al", 3), ("alice", 12), ("alice-2", 4), ("alice.b", 2) })
            for (var i = 0; i < count; i++)
                Store.Insert(Job($"{user}#{i}", user, seq += 9));

        var alice = Store.Page("alice", null, null, 100).Select(j => j.Seq).ToList();
        Assert.Equal(12, alice.Count);
        Assert.Equal(alice.OrderDescending(), alice);
        Assert.All(Store.Page("alice", null, null, 100), j => Assert.Equal("alice", j.UserId));
        Assert.Equal(alice.Skip(5).Take(4), Store.Page("alice", null, alice[4], 4).Select(j => j.Seq));
        Assert.Empty(Store.Page("alice", null, alice[^1], 10));
        Assert.Equal(new[] { "al#2", "al#1", "al#0" }, Store.Page("al", null, null, 10).Select(j => j.Id));
        Assert.Empty(Store.Page("a", null, null, 10));

        var started = Store.Find("alice#3")!;
        Assert.True(started.Start(At(1, 13), null));
        Store.Update(started);
        Assert.Equal(new[] { "alice#3" }, Store.Page("alice", JobStatus.Running, null, 10).Select(j => j.Id));
        Assert.DoesNotContain("alice#3", Store.Page("alice", JobStatus.Queued, null, 100).Select(j => j.Id));
        Assert.Equal(11, Store.Page("alice", JobStatus.Queued, null, 100).Count);
        Assert.Equal(new[] { "alice#2", "alice#1" }, Store.Page("alice", JobStatus.Queued, started.Seq, 2).Select(j => j.Id));
        Assert.Equal(new[] { "alice.b#1" }, Store.Page(null, null, null, 1).Select(j => j.Id));
        Assert.Equal(new[] { "alice#3" }, Store.Page(null, JobStatus.Running, null, 5).Select(j => j.Id));
    }

    [SkippableFact]
    public void Finished_jobs_are_found_by_when_they_finished()
    {
        var old = Job("old", "alice", 1);
        old.Fail(new JobError { Code = "internal", Message = "x" }, At(2));
        var recent = Job("recent", "alice", 2);
        recent.Expire(At(5));
        Store.Insert(old);
        Store.Insert(recent);
        Store.Insert(Job("waiting", "alice", 3));

        Assert.Equal(new[] { "old" }, Store.FinishedBefore(At(3)).Select(j => j.Id));
        Assert.Equal(new[] { "recent" }, Store.FinishedSince(At(3)).Select(j => j.Id));
        Assert.Equal(0, Store.Page(null, null, null, 10).Count(j => j.Id == "none"));
    }
}

public sealed class LiteDbJobRecordsTests() : JobRecordsContract(Stores.Of(out var db, d => (IJobRecords)new LiteDbJobRecords(d)), db)
{
    [Theory]
    [InlineData(null, null)]
    [InlineData(null, 50L)]
    [InlineData(JobStatus.Queued, null)]
    [InlineData(JobStatus.Queued, 50L)]
    public void A_users_page_reads_an_index_range_in_index_order_without_sorting(JobStatus? status, long? before)
    {
        var plan = ((LiteDbJobRecords)Store).PageQuery("alice", status, before, 20).GetPlan();

        var index = Assert.IsType<LiteDB.BsonDocument>(plan["index"].AsDocument, exactMatch: false);
        Assert.True(index.Count > 0, plan.ToString());
        Assert.Equal(status is null ? "UserSeq" : "UserStatusSeq", index["name"].AsString);
        Assert.StartsWith("INDEX RANGE", index["mode"].AsString, StringComparison.Ordinal);
        Assert.Equal(-1, index["order"].AsInt32);
        Assert.False(plan.ContainsKey("orderBy"), plan.ToString());
    }
}
