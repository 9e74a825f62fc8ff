using NewBie.Host.Jobs;

namespace NewBie.Host.Nodes;

public enum JobSignalKind
{
    /// <summary>The job's record changed (a step, a stage, a status).</summary>
    Changed,

    /// <summary>The job's record changed in a way that can move queue places (added, started, finished, re-prioritised).</summary>
    QueueMoved,

    /// <summary>A cancel was asked for while the job runs: the node running it stops it before its next step.</summary>
    Cancel,

    /// <summary>Not sent: raised locally after the listening connection was lost and made again, when signals may have been missed.</summary>
    Resync,
}

/// <summary>That job <see cref="JobId"/> changed on some node; the receiver reads what it needs from the shared store.</summary>
public readonly record struct JobSignal(JobSignalKind Kind, string JobId);

/// <summary>
/// Tells the other nodes that a job changed. The signal carries only the job id and its kind (small, whatever the
/// record's size); a receiver reads the record itself. A node never receives its own signals. With one node there is no
/// one to tell: the embedded mode registers no implementation and nothing changes there.
/// </summary>
public interface IJobSignals
{
    /// <summary>Sends the signal to every other node; quick and non-blocking (called under the job store's lock).</summary>
    void Publish(JobSignal signal);

    /// <summary>A signal from another node, or a local <see cref="JobSignalKind.Resync"/>.</summary>
    event Action<JobSignal>? Received;
}

/// <summary>
/// Joins this node's event streams and running jobs to the other nodes': every change saved here is signalled; a signal
/// from elsewhere is read back from the shared store and delivered to this node's streams (<see cref="JobEventHub"/>,
/// whose fan-out per node is unchanged), and a cancel stops the job if it runs here.
/// </summary>
public sealed class ClusterJobEvents : IHostedService
{
    private readonly JobStore _jobs;
    private readonly JobEventHub _hub;
    private readonly RunningJobs _running;
    private readonly IJobSignals _signals;
    private readonly ILogger<ClusterJobEvents> _logger;

    public ClusterJobEvents(JobStore jobs, JobEventHub hub, RunningJobs running, IJobSignals signals, ILogger<ClusterJobEvents> logger)
    {
        (_jobs, _hub, _running, _signals, _logger) = (jobs, hub, running, signals, logger);
        // Subscribed at construction (before any job can change), not at start.
        jobs.Changed += OnLocalChange;
        signals.Received += OnSignal;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void OnLocalChange(JobRecord job, bool queueMoved)
    {
        // A running job whose record now asks for a cancel: the node running it may be another one.
        var kind = job is { Status: JobStatus.Running, CancelRequested: true } ? JobSignalKind.Cancel
            : queueMoved ? JobSignalKind.QueueMoved : JobSignalKind.Changed;
        _signals.Publish(new JobSignal(kind, job.Id));
    }

    private void OnSignal(JobSignal signal)
    {
        try
        {
            switch (signal.Kind)
            {
                case JobSignalKind.Resync:
                    // Whatever was missed while the connection was down: every followed job is read once more.
                    foreach (var id in _hub.WatchedJobs)
                        if (_jobs.Find(id) is { } watched) _hub.Deliver(watched, queueChanged: false);
                    _hub.WakeWaiting();
                    return;
                case JobSignalKind.Cancel when _running.Cancel(signal.JobId):
                    _logger.LogInformation("Job {JobId} canceled from another node", signal.JobId);
                    break;
            }
            // Read only for the jobs a stream here follows: a node does not re-read every step of every job.
            if (_hub.IsWatched(signal.JobId) && _jobs.Find(signal.JobId) is { } job)
                _hub.Deliver(job, signal.Kind == JobSignalKind.QueueMoved);
            else if (signal.Kind == JobSignalKind.QueueMoved)
                _hub.WakeWaiting();
        }
        catch (Exception e)
        {
            // A signal is a hint to read again; one that cannot be handled must not stop the listener.
            _logger.LogWarning(e, "Signal {Kind} of job {JobId} from another node not handled", signal.Kind, signal.JobId);
        }
    }
}
