using System.Threading.Channels;
using Npgsql;

namespace NewBie.Host.Nodes;

/// <summary>
/// <see cref="IJobSignals"/> over PostgreSQL's NOTIFY/LISTEN on the database every node already shares: a payload of
/// "instance|kind|job id" (a few dozen bytes, far below NOTIFY's 8000) on the channel <see cref="ChannelName"/>.
/// Sending is queued (publishers hold the job store's lock) and batched, with the signals of one job in a batch
/// folded into one; receiving holds one connection in LISTEN, made again after any failure, after which
/// <see cref="JobSignalKind.Resync"/> tells the receiver that signals may have been missed.
/// </summary>
public sealed class PostgresJobSignals(NpgsqlDataSource dataSource, ILogger<PostgresJobSignals> logger) : BackgroundService, IJobSignals
{
    public const string ChannelName = "newbie_jobs";

    /// <summary>An idle listening connection is checked this often, so that a dead one is found and made again.</summary>
    public static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    // Tells this process's own signals apart from others': the node name is the admin's to choose and may repeat.
    private readonly string _instance = Guid.NewGuid().ToString("N")[..12];
    private readonly Channel<JobSignal> _outbox = Channel.CreateUnbounded<JobSignal>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public event Action<JobSignal>? Received;

    /// <summary>Completes once the first LISTEN is in place: signals sent after it reach this node.</summary>
    public Task Listening => _listening.Task;

    public void Publish(JobSignal signal)
    {
        if (signal.Kind != JobSignalKind.Resync) _outbox.Writer.TryWrite(signal);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.WhenAll(ListenAsync(stoppingToken), SendAsync(stoppingToken));

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        var connectedBefore = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => OnNotification(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {ChannelName}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                if (connectedBefore)
                {
                    logger.LogInformation("Listening for other nodes' job signals again");
                    Received?.Invoke(new JobSignal(JobSignalKind.Resync, ""));
                }
                connectedBefore = true;
                _listening.TrySetResult();
                while (true)
                {
                    if (await connection.WaitAsync(KeepAliveEvery, stoppingToken)) continue;
                    await using var ping = new NpgsqlCommand("SELECT 1", connection);
                    await ping.ExecuteNonQueryAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning("Lost the connection that listens for other nodes' job signals ({Message}); connecting again in {Delay}", e.Message, RetryAfter);
                try { await Task.Delay(RetryAfter, stoppingToken); } catch (OperationCanceledException) { return; }
            }
        }
    }

    private void OnNotification(string payload)
    {
        var parts = payload.Split('|', 3);
        if (parts.Length != 3 || parts[0] == _instance) return;
        JobSignalKind? kind = parts[1] switch { "c" => JobSignalKind.Changed, "q" => JobSignalKind.QueueMoved, "x" => JobSignalKind.Cancel, _ => null };
        if (kind is { } known) Received?.Invoke(new JobSignal(known, parts[2]));
    }

    private async Task SendAsync(CancellationToken stoppingToken)
    {
        var batch = new Dictionary<string, JobSignalKind>(StringComparer.Ordinal);
        try
        {
            while (await _outbox.Reader.WaitToReadAsync(stoppingToken))
            {
                // Steps of one job come fast; a receiver reads the latest record anyway, so one signal per job per batch
                // does, of the kind that asks the most (cancel over queue moved over changed).
                while (batch.Count < 500 && _outbox.Reader.TryRead(out var signal))
                    batch[signal.JobId] = batch.TryGetValue(signal.JobId, out var earlier) && earlier > signal.Kind ? earlier : signal.Kind;
                await SendBatchAsync(batch, stoppingToken);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task SendBatchAsync(Dictionary<string, JobSignalKind> signals, CancellationToken stoppingToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                await using var batch = new NpgsqlBatch(connection);
                foreach (var (jobId, kind) in signals)
                {
                    var command = new NpgsqlBatchCommand("SELECT pg_notify($1, $2)");
                    command.Parameters.Add(new NpgsqlParameter { Value = ChannelName });
                    command.Parameters.Add(new NpgsqlParameter { Value = $"{_instance}|{Code(kind)}|{jobId}" });
                    batch.BatchCommands.Add(command);
                }
                await batch.ExecuteNonQueryAsync(stoppingToken);
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException && attempt < 3)
            {
                logger.LogWarning("Could not signal {Count} job changes to the other nodes ({Message}); trying again", signals.Count, e.Message);
                await Task.Delay(RetryAfter, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The other nodes' streams miss these changes until the next one; a cancel still reaches the running job
                // through Hangfire's own cancellation check.
                logger.LogError("Dropped {Count} job change signals to the other nodes: {Message}", signals.Count, e.Message);
                return;
            }
        }
    }

    private static string Code(JobSignalKind kind) => kind switch { JobSignalKind.Cancel => "x", JobSignalKind.QueueMoved => "q", _ => "c" };
}
