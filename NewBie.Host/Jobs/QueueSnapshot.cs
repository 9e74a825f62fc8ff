using LiteDB;
using NewBie.Host.Storage;
using NewBie.JobStorage;

namespace NewBie.Host.Jobs;

/// <summary>
/// The GPU queue's unclaimed jobs in the order they will be claimed (entries carry Hangfire job ids). The seam between
/// queue positions and whoever owns the dequeue: today the app database replays FairOrder; with the LiteDB job storage
/// this becomes <c>storage.GetFairQueue("gpu")</c>.
/// </summary>
public interface IQueueSnapshot
{
    IReadOnlyList<FairQueueEntry> Pending();

    /// <summary>Told when a job is claimed, so that the least-recently-served order advances.</summary>
    void Claimed(JobRecord job);
}

/// <summary>Fair order computed over the queued job records, with the served counters kept in the app database.</summary>
public sealed class AppQueueSnapshot(AppDatabase database, JobStore jobs) : IQueueSnapshot
{
    private const string CounterId = "\0counter";

    private readonly ILiteCollection<ServedRecord> _served = database.Collection<ServedRecord>("fair_served");
    private readonly Lock _gate = new();

    public IReadOnlyList<FairQueueEntry> Pending()
    {
        var pending = jobs.WithStatus(JobStatus.Queued)
            .Where(j => j.HangfireJobId is not null)
            .Select(j => new FairQueueEntry(j.HangfireJobId!, j.UserId, j.Priority, j.Seq));
        var served = _served.FindAll().ToList();
        var counter = served.FirstOrDefault(s => s.Id == CounterId)?.LastServed ?? 0;
        var lastServed = served.Where(s => s.Id != CounterId).ToDictionary(s => s.Id, s => s.LastServed, StringComparer.Ordinal);
        return FairOrder.Order(pending, lastServed, counter);
    }

    public void Claimed(JobRecord job)
    {
        lock (_gate)
        {
            var counter = (_served.FindById(CounterId)?.LastServed ?? 0) + 1;
            _served.Upsert(new ServedRecord { Id = CounterId, LastServed = counter });
            _served.Upsert(new ServedRecord { Id = job.UserId, LastServed = counter });
        }
    }

    public sealed class ServedRecord
    {
        [BsonId] public string Id { get; set; } = "";
        public long LastServed { get; set; }
    }
}
