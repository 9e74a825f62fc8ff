using System.Data;
using System.Globalization;
using Hangfire.PostgreSql;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage.Postgres;

/// <summary>
/// Plugs <see cref="PostgresFairQueue"/> into Hangfire.PostgreSql for the fair queues
/// (<c>storage.QueueProviders.Add(provider, queues)</c>): Hangfire's enqueue and its workers' fetch go through the
/// fair queue; the fetched job is Hangfire's own <see cref="PostgreSqlFetchedJob"/>, so acknowledge, requeue and the
/// sliding invisibility heartbeat are the storage's.
/// </summary>
internal sealed class PostgresFairQueueProvider(PostgreSqlStorage storage, PostgresFairQueue fairQueue)
    : IPersistentJobQueueProvider, IPersistentJobQueue, IPersistentJobQueueMonitoringApi
{
    public IPersistentJobQueue GetJobQueue() => this;

    public IPersistentJobQueueMonitoringApi GetJobQueueMonitoringApi() => this;

    public IFetchedJob Dequeue(string[] queues, CancellationToken cancellationToken) => fairQueue.Dequeue(storage, queues, cancellationToken);

    public void Enqueue(IDbConnection connection, string queue, string jobId) => fairQueue.Enqueue(connection, queue, jobId);

    // The default provider already lists every queue of the jobqueue table; listing the fair ones here too would show them twice.
    public IEnumerable<string> GetQueues() => [];

    /// <summary>The dashboard's "enqueued" page of a fair queue, in claim order.</summary>
    public IEnumerable<long> GetEnqueuedJobIds(string queue, int from, int perPage) =>
        fairQueue.GetFairQueueSnapshot(queue).Pending.Skip(from).Take(perPage).Select(e => long.Parse(e.JobId, CultureInfo.InvariantCulture)).ToList();

    public IEnumerable<long> GetFetchedJobIds(string queue, int from, int perPage) =>
        fairQueue.GetFetchedJobIds(queue).Skip(from).Take(perPage).Select(id => long.Parse(id, CultureInfo.InvariantCulture)).ToList();

    public EnqueuedAndFetchedCountDto GetEnqueuedAndFetchedCount(string queue)
    {
        var (enqueued, fetched) = fairQueue.Counts(queue);
        return new EnqueuedAndFetchedCountDto { EnqueuedCount = enqueued, FetchedCount = fetched };
    }
}
