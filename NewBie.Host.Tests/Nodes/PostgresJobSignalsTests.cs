using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using NewBie.Host.Nodes;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Nodes;

/// <summary>NOTIFY/LISTEN between two nodes' <see cref="PostgresJobSignals"/> on one real PostgreSQL database.</summary>
public sealed class PostgresJobSignalsTests : IAsyncLifetime
{
    private PostgresTestDatabase? _db;
    private PostgresJobSignals? _a, _b;
    private readonly Inbox _atA = new(), _atB = new();

    public async Task InitializeAsync()
    {
        if (PostgresCluster.Missing is not null) return;
        _db = PostgresCluster.CreateDatabase();
        _a = new PostgresJobSignals(_db.NewDataSource(), NullLogger<PostgresJobSignals>.Instance);
        _b = new PostgresJobSignals(_db.NewDataSource(), NullLogger<PostgresJobSignals>.Instance);
        _a.Received += _atA.Add;
        _b.Received += _atB.Add;
        await _a.StartAsync(CancellationToken.None);
        await _b.StartAsync(CancellationToken.None);
        await Task.WhenAll(_a.Listening, _b.Listening).WaitAsync(TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        if (_a is not null) await _a.StopAsync(CancellationToken.None);
        if (_b is not null) await _b.StopAsync(CancellationToken.None);
        _db?.Dispose();
    }

    [SkippableFact]
    public async Task Signal_sent_by_one_node_reaches_the_other_and_never_comes_back_to_its_sender()
    {
        PostgresCluster.SkipIfMissing();

        _a!.Publish(new JobSignal(JobSignalKind.Changed, "job-1"));
        _a.Publish(new JobSignal(JobSignalKind.Cancel, "job-2"));
        await _atB.WaitUntilAsync(() => _atB.Count >= 2, () => $"B received {string.Join(", ", _atB)}");
        // B's answer is committed after A's two signals, and one session's notifications arrive in commit order: once A
        // has B's, it would have had its own.
        _b!.Publish(new JobSignal(JobSignalKind.QueueMoved, "job-3"));
        await _atA.WaitUntilAsync(() => !_atA.IsEmpty, () => "A received nothing");

        Assert.Equal([new JobSignal(JobSignalKind.Changed, "job-1"), new JobSignal(JobSignalKind.Cancel, "job-2")], _atB.ToArray());
        Assert.Equal([new JobSignal(JobSignalKind.QueueMoved, "job-3")], _atA.ToArray());
    }

    [SkippableFact]
    public async Task Signals_of_one_job_sent_together_are_folded_into_the_strongest()
    {
        PostgresCluster.SkipIfMissing();

        for (var step = 0; step < 200; step++) _a!.Publish(new JobSignal(JobSignalKind.Changed, "busy"));
        _a!.Publish(new JobSignal(JobSignalKind.Cancel, "busy"));
        _a.Publish(new JobSignal(JobSignalKind.Changed, "last"));
        await _atB.WaitUntilAsync(() => _atB.Any(s => s.JobId == "last"), () => $"B received {_atB.Count} signals");

        Assert.Contains(new JobSignal(JobSignalKind.Cancel, "busy"), _atB);
        Assert.True(_atB.Count(s => s.JobId == "busy") < 200, $"{_atB.Count(s => s.JobId == "busy")} signals for 201 publishes");
    }

    [SkippableFact]
    public async Task Listener_whose_connection_is_killed_connects_again_resyncs_and_receives_later_signals()
    {
        PostgresCluster.SkipIfMissing();
        await using (var admin = _db!.NewDataSource())
        await using (var kill = admin.CreateCommand("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
            await kill.ExecuteNonQueryAsync();

        await _atB.WaitUntilAsync(() => _atB.Contains(new JobSignal(JobSignalKind.Resync, "")), () => "B did not resync");
        _a!.Publish(new JobSignal(JobSignalKind.Changed, "after"));

        await _atB.WaitUntilAsync(() => _atB.Contains(new JobSignal(JobSignalKind.Changed, "after")), () => $"B received {string.Join(", ", _atB)}");
    }

    /// <summary>The signals a node received, in order, and a wait that looks again at each arrival.</summary>
    private sealed class Inbox : IReadOnlyCollection<JobSignal>
    {
        private readonly ConcurrentQueue<JobSignal> _signals = new();
        private TaskCompletionSource _arrived = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Add(JobSignal signal)
        {
            _signals.Enqueue(signal);
            Interlocked.Exchange(ref _arrived, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        public int Count => _signals.Count;

        public bool IsEmpty => _signals.IsEmpty;

        public IEnumerator<JobSignal> GetEnumerator() => _signals.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public async Task WaitUntilAsync(Func<bool> condition, Func<string> what)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (true)
            {
                // Taken before the look: an arrival after it completes it.
                var arrived = Volatile.Read(ref _arrived).Task;
                if (condition()) return;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) Assert.Fail(what());
                await Task.WhenAny(arrived, Task.Delay(left));
            }
        }
    }
}
