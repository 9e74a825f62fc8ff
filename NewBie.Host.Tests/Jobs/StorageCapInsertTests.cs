using NewBie.Host.Jobs;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Jobs;

/// <summary>The storage cap checked with the insert, in the embedded mode (one process: under the job store's lock).</summary>
public sealed class StorageCapInsertTests : IDisposable
{
    private readonly LiteDbTestDatabase _db = new();

    public void Dispose() => _db.Dispose();

    [Fact]
    public void Concurrent_submits_of_one_user_take_only_the_room_the_cap_leaves()
    {
        var store = new JobStore(new LiteDbJobRecords(_db.Database));
        var largest = Draft().Params.LargestBytes;
        // One job's worth kept, room for three more at their largest, and a half.
        var cap = new StorageCap(largest + 3 * largest + largest / 2, UsedBytes: largest);
        var outcomes = new SubmitOutcome[40];

        Parallel.For(0, 40, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            outcomes[i] = store.Insert(Draft(), maxQueued: 1000, maxActiveOfUser: 1000, storageCap: cap).Outcome);

        Assert.Equal(3, outcomes.Count(o => o == SubmitOutcome.Created));
        Assert.Equal(37, outcomes.Count(o => o == SubmitOutcome.StorageCapExceeded));
    }

    private static JobRecord Draft() => new()
    {
        Id = Guid.NewGuid().ToString("N"),
        UserId = "alice",
        Status = JobStatus.Queued,
        Params = new JobParams { Prompt = "p", Width = 256, Height = 256, Steps = 2, Count = 1 },
        CreatedAt = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc),
    };
}
