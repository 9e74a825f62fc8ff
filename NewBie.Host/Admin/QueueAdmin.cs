using NewBie.Host.Jobs;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Admin;

public enum PriorityOutcome { Changed, NotQueued, NotFound }

/// <summary>
/// What an admin does to the GPU queue: pause and resume the worker (it finishes the running job but claims no
/// new one) and reorder waiting jobs. Both act on the job storage's claim, so queue positions stay true.
/// </summary>
public sealed class QueueAdmin(JobStore jobs, IFairQueue storage)
{
    public bool IsPaused => storage.IsQueuePaused(JobQueue.GpuQueue);

    public void Pause() => storage.PauseQueue(JobQueue.GpuQueue);

    public void Resume() => storage.ResumeQueue(JobQueue.GpuQueue);

    /// <summary>Ahead of every priority class; several jobs moved to the front share it fairly.</summary>
    public PriorityOutcome MoveToFront(string jobId) => SetPriority(jobId, JobPriority.Front);

    /// <summary>Changes a queued job's priority in its record and in the storage's claim order.</summary>
    public PriorityOutcome SetPriority(string jobId, int priority)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(priority, JobPriority.Low);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(priority, JobPriority.Front);
        var job = jobs.Find(jobId);
        if (job is null) return PriorityOutcome.NotFound;
        if (job.Status != JobStatus.Queued || job.HangfireJobId is not { } hangfireId) return PriorityOutcome.NotQueued;
        // The storage row decides the claim; once the worker fetched the job there is nothing left to reorder.
        if (!storage.SetQueuedPriority(JobQueue.GpuQueue, hangfireId, priority)) return PriorityOutcome.NotQueued;
        jobs.Update(jobId, j => j.Reprioritize(priority));
        return PriorityOutcome.Changed;
    }
}
