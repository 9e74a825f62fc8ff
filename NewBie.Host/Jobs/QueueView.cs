namespace NewBie.Host.Jobs;

/// <summary>Where a job stands: 1-based place in the claim order (null once it left the queue) and seconds until it should be done.</summary>
public sealed record QueuePlace(int? Position, double? EtaSeconds);

/// <summary>Queue positions and ETAs: the running jobs' remaining time plus the estimates of everything claimed before.</summary>
public sealed class QueueView(JobStore jobs, IQueueSnapshot snapshot, RunTimeStats stats, TimeProvider time)
{
    public IReadOnlyDictionary<string, QueuePlace> Places()
    {
        var places = new Dictionary<string, QueuePlace>(StringComparer.Ordinal);
        var now = time.GetUtcNow().UtcDateTime;
        var ahead = 0.0;
        foreach (var running in jobs.WithStatus(JobStatus.Running))
        {
            var elapsed = running.StartedAt is { } started ? (now - started).TotalSeconds : 0;
            var remaining = Math.Max(0, stats.Estimate(running.Params) - elapsed);
            places[running.Id] = new QueuePlace(null, remaining);
            ahead = Math.Max(ahead, remaining);
        }
        var queued = jobs.WithStatus(JobStatus.Queued).Where(j => j.HangfireJobId is not null).ToDictionary(j => j.HangfireJobId!, StringComparer.Ordinal);
        var position = 0;
        foreach (var entry in snapshot.Pending())
        {
            if (!queued.TryGetValue(entry.JobId, out var job)) continue;
            ahead += stats.Estimate(job.Params);
            places[job.Id] = new QueuePlace(++position, ahead);
        }
        return places;
    }

    // A finished job has no place: skip Places(), which reads every queued job (the load bench's status reads).
    public QueuePlace PlaceOf(JobRecord job) =>
        job.IsFinished ? new QueuePlace(null, 0) : Places().GetValueOrDefault(job.Id) ?? new QueuePlace(null, null);

    /// <summary>Seconds until the GPU should next be free: what a refused client is told to wait (Retry-After).</summary>
    public double SecondsUntilNextSlot() =>
        Places().Values.Where(p => p.Position is null && p.EtaSeconds is not null).Select(p => p.EtaSeconds!.Value).DefaultIfEmpty(0).Max();
}
