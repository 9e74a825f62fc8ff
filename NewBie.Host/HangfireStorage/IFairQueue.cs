namespace NewBie.Host.HangfireStorage;

/// <summary>
/// The queue side of a Hangfire storage with fair queues, what the rest of the app reads and changes of the GPU queue
/// without knowing which storage it runs on (LiteDB in one process, PostgreSQL across nodes).
/// </summary>
public interface IFairQueue
{
    /// <summary>
    /// Raised with the queue's name after a committed change of a fair queue (a job added, claimed, removed, returned
    /// or re-prioritised, here or on another node). Handlers must be quick and must not write to the storage.
    /// </summary>
    event Action<string>? FairQueueChanged;

    /// <summary>The unclaimed jobs of a fair queue in claim order, with a version that changes with every change of the queue.</summary>
    FairQueueSnapshot GetFairQueueSnapshot(string queue);

    /// <summary>
    /// The version <see cref="GetFairQueueSnapshot"/> would carry now. An implementation that derives the claim order
    /// lazily answers it without deriving: readers that only ask whether anything changed must not pay for the order.
    /// </summary>
    long GetFairQueueVersion(string queue) => GetFairQueueSnapshot(queue).Version;

    /// <summary>The ids of the jobs of <paramref name="queue"/> that a worker has fetched and not yet acknowledged.</summary>
    IReadOnlyList<string> GetFetchedJobIds(string queue);

    /// <summary>Stops workers from claiming jobs of <paramref name="queue"/>; those already fetched run on, the rest stay queued in order.</summary>
    void PauseQueue(string queue);

    void ResumeQueue(string queue);

    bool IsQueuePaused(string queue);

    /// <summary>Changes the priority of a job still waiting in <paramref name="queue"/>; false once it was fetched or is gone.</summary>
    bool SetQueuedPriority(string queue, string jobId, int priority);
}
