using System.Collections.Concurrent;

namespace NewBie.Host.Jobs;

/// <summary>
/// The cancellation sources of the jobs running in this process, so that a cancel from the API reaches the engine
/// before its next step instead of waiting for Hangfire's cancellation watcher to poll the storage.
/// </summary>
public sealed class RunningJobs
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _runs = new(StringComparer.Ordinal);

    public IDisposable Register(string jobId, CancellationTokenSource source)
    {
        _runs[jobId] = source;
        return new Registration(() => _runs.TryRemove(new KeyValuePair<string, CancellationTokenSource>(jobId, source)));
    }

    /// <summary>The jobs running in this process now (at most one: the GPU queue has one worker).</summary>
    public IReadOnlyCollection<string> Ids => [.. _runs.Keys];

    /// <summary>Signals the run of <paramref name="jobId"/>; false when it is not running here.</summary>
    public bool Cancel(string jobId)
    {
        if (!_runs.TryGetValue(jobId, out var source)) return false;
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        return true;
    }

    private sealed class Registration(Action release) : IDisposable
    {
        public void Dispose() => release();
    }
}
