using NewBie.JobStorage;

namespace NewBie.Host.Jobs;

/// <summary>
/// The GPU queue's unclaimed jobs in the order they will be claimed (entries carry Hangfire job ids). The seam between
/// queue positions and whoever owns the dequeue: the LiteDB job storage, whose dequeue is the fair order.
/// </summary>
public interface IQueueSnapshot
{
    IReadOnlyList<FairQueueEntry> Pending();

    /// <summary>Told when a job is claimed, so that the least-recently-served order advances.</summary>
    void Claimed(JobRecord job);
}

/// <summary>The storage's own prediction of its fair dequeue: the same policy and served counters it claims with.</summary>
public sealed class StorageQueueSnapshot(LiteDbStorage storage) : IQueueSnapshot
{
    public IReadOnlyList<FairQueueEntry> Pending() => storage.GetFairQueue(JobQueue.GpuQueue);

    // The storage advances its served counters in the same transaction as the claim.
    public void Claimed(JobRecord job) { }
}
