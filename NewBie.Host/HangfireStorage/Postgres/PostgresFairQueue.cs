using System.Data;
using System.Globalization;
using System.Transactions;
using Hangfire.PostgreSql;
using Hangfire.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;

namespace NewBie.Host.HangfireStorage.Postgres;

/// <summary>
/// The fair queues of Hangfire's PostgreSQL storage, shared by every node on the database. A queued job's place
/// (user, priority, submit sequence, app reference) is a row of <c>fair_entry</c>, written beside Hangfire's
/// <c>jobqueue</c> row in the same transaction and deleted with it (foreign key, cascade). A claim takes a
/// transaction-scoped advisory lock per queue, reads the claimable rows and the served counters, picks with
/// <see cref="FairOrder.PickNext"/> and marks the row fetched and the user served in that one transaction: claims of
/// all nodes are serialised, so fairness holds across them and no job is claimed twice. Triggers notify the
/// <c>newbie_fair_queue</c> channel on every change of a fair queue; each node listens and derives its claim-order
/// snapshot once per change, when first asked for, whatever the number of readers.
/// </summary>
public sealed class PostgresFairQueue : IFairQueue, IDisposable
{
    private const string Channel = "newbie_fair_queue";
    private const string OriginSetting = "newbie.fair_origin";
    private static readonly string[] FinalStates = ["Deleted", "Succeeded", "Failed"];

    private readonly NpgsqlDataSource _dataSource;
    private readonly PostgresQueueOptions _options;
    private readonly ILogger _logger;
    private readonly string _schema;
    private readonly Dictionary<string, QueueState> _queues;
    private readonly CancellationTokenSource _stopping = new();
    // Tags this node's writes, so that its listener skips the notifications of changes it already counted.
    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly Task _listener;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _loads;

    /// <summary>Creates the fair queues' tables and triggers if missing (Hangfire's own schema must exist) and starts listening.</summary>
    public PostgresFairQueue(NpgsqlDataSource dataSource, PostgresQueueOptions options, ILogger<PostgresFairQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _dataSource = dataSource;
        _options = options;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _schema = QuoteIdentifier(options.SchemaName);
        _queues = options.FairQueues.Distinct(StringComparer.Ordinal).ToDictionary(q => q, _ => new QueueState(), StringComparer.Ordinal);
        Install();
        _listener = Task.Run(() => ListenAsync(_stopping.Token));
        // Readers start once this node hears the others' changes (a listener that cannot connect keeps trying, logged).
        _listening.Task.Wait(TimeSpan.FromSeconds(10));
    }

    /// <inheritdoc />
    public event Action<string>? FairQueueChanged;

    internal QueueSignal Signal { get; } = new();

    /// <summary>How many times a claim-order snapshot was loaded: once per change, whatever the readers (tests count it).</summary>
    internal long Loads => Interlocked.Read(ref _loads);

    internal PostgresQueueOptions Options => _options;

    internal bool IsFair(string queue) => _queues.ContainsKey(queue);

    /// <inheritdoc />
    public FairQueueSnapshot GetFairQueueSnapshot(string queue) => Current(queue).Snapshot;

    /// <inheritdoc />
    public IReadOnlyList<string> GetFetchedJobIds(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        using var command = _dataSource.CreateCommand($"SELECT jobid FROM {_schema}.jobqueue WHERE queue = $1 AND fetchedat IS NOT NULL ORDER BY fetchedat, id");
        command.Parameters.Add(new NpgsqlParameter { Value = queue });
        using var reader = command.ExecuteReader();
        var ids = new List<string>();
        while (reader.Read()) ids.Add(reader.GetInt64(0).ToString(CultureInfo.InvariantCulture));
        return ids;
    }

    /// <inheritdoc />
    public void PauseQueue(string queue) => SetPaused(queue, true);

    /// <inheritdoc />
    public void ResumeQueue(string queue) => SetPaused(queue, false);

    /// <inheritdoc />
    public bool IsQueuePaused(string queue) => Current(queue).Paused;

    /// <inheritdoc />
    public bool SetQueuedPriority(string queue, string jobId, int priority)
    {
        var state = StateOf(queue);
        if (!long.TryParse(jobId, NumberStyles.None, CultureInfo.InvariantCulture, out var id)) return false;
        int changed;
        using (var connection = _dataSource.OpenConnection())
        using (var transaction = connection.BeginTransaction())
        {
            // Under the queue's claim lock, so "still waiting" is exact: no node claims it meanwhile.
            Lock(connection, queue);
            using var command = new NpgsqlCommand($"""
                UPDATE {_schema}.fair_entry f SET priority = $3
                FROM {_schema}.jobqueue q
                WHERE f.queueid = q.id AND q.queue = $1 AND q.jobid = $2 AND q.fetchedat IS NULL
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = queue });
            command.Parameters.Add(new NpgsqlParameter { Value = id });
            command.Parameters.Add(new NpgsqlParameter { Value = priority });
            changed = command.ExecuteNonQuery();
            transaction.Commit();
        }
        if (changed > 0) Changed(queue, state);
        return changed > 0;
    }

    public void Dispose()
    {
        if (_stopping.IsCancellationRequested) return;
        _stopping.Cancel();
        try { _listener.Wait(TimeSpan.FromSeconds(10)); }
        catch (AggregateException) { /* the listener ends by cancellation */ }
        _stopping.Dispose();
        Signal.RaiseAll();
    }

    /// <summary>
    /// Adds a job to a fair queue inside Hangfire's write transaction (on its connection): the <c>jobqueue</c> row and
    /// the job's place, read from its parameters, commit or roll back together.
    /// </summary>
    internal void Enqueue(IDbConnection connection, string queue, string jobId)
    {
        var state = StateOf(queue);
        var npgsql = connection as NpgsqlConnection
            ?? throw new NotSupportedException($"The fair queue needs Hangfire's Npgsql connection, not {connection.GetType().Name}.");
        var id = long.Parse(jobId, NumberStyles.None, CultureInfo.InvariantCulture);
        var parameters = new Dictionary<string, string?>(StringComparer.Ordinal);
        using (var read = new NpgsqlCommand($"SELECT name, value FROM {_schema}.jobparameter WHERE jobid = $1 AND name = ANY($2)", npgsql))
        {
            read.Parameters.Add(new NpgsqlParameter { Value = id });
            read.Parameters.Add(new NpgsqlParameter { Value = FairQueueParameters.All });
            using var reader = read.ExecuteReader();
            while (reader.Read()) parameters[reader.GetString(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
        }
        var place = FairQueueParameters.Read(parameters);
        using (var insert = new NpgsqlCommand($"""
            WITH o AS (SELECT set_config('{OriginSetting}', $7, true)),
                 q AS (INSERT INTO {_schema}.jobqueue (jobid, queue) SELECT $1, $2 FROM o RETURNING id)
            INSERT INTO {_schema}.fair_entry (queueid, queue, userid, priority, seq, ref) SELECT id, $2, $3, $4, $5, $6 FROM q
            """, npgsql))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = id });
            insert.Parameters.Add(new NpgsqlParameter { Value = queue });
            insert.Parameters.Add(new NpgsqlParameter { Value = place.UserId ?? "" });
            insert.Parameters.Add(new NpgsqlParameter { Value = place.Priority ?? 1 });
            insert.Parameters.Add(new NpgsqlParameter { Value = place.Seq ?? id });
            insert.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)place.Ref ?? DBNull.Value });
            insert.Parameters.Add(new NpgsqlParameter { Value = _origin });
            insert.ExecuteNonQuery();
        }
        // This node's readers see the job once Hangfire's transaction committed, without waiting for the notification.
        if (System.Transactions.Transaction.Current is { } transaction)
            transaction.TransactionCompleted += (_, e) =>
            {
                if (e.Transaction?.TransactionInformation.Status == TransactionStatus.Committed) Changed(queue, state);
            };
        else
            Changed(queue, state);
    }

    /// <summary>
    /// Claims the job <see cref="FairOrder.PickNext"/> chooses among the claimable rows of the first of
    /// <paramref name="queues"/> that has one (waiting, or fetched by a node that stopped renewing its claim for the
    /// invisibility timeout), or waits for a change; throws <see cref="OperationCanceledException"/> when cancelled.
    /// </summary>
    internal IFetchedJob Dequeue(PostgreSqlStorage storage, string[] queues, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queues);
        if (queues.Length == 0) throw new ArgumentException("Queue array must be non-empty.", nameof(queues));
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
            var next = Signal.Next(queues);
            foreach (var queue in queues)
            {
                if (TryClaim(queue) is { } claimed)
                    return new PostgreSqlFetchedJob(storage, claimed.RowId, claimed.JobId.ToString(CultureInfo.InvariantCulture), queue, claimed.FetchedAt);
            }
            try
            {
                next.Wait(_options.QueuePollInterval, cancellationToken);
            }
            catch (AggregateException) { /* a signal task never faults */ }
        }
    }

    internal (long EnqueuedCount, long FetchedCount) Counts(string queue)
    {
        using var command = _dataSource.CreateCommand($"""
            SELECT count(*) FILTER (WHERE fetchedat IS NULL), count(*) FILTER (WHERE fetchedat IS NOT NULL)
            FROM {_schema}.jobqueue WHERE queue = $1
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = queue });
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    private (long RowId, long JobId, DateTime FetchedAt)? TryClaim(string queue)
    {
        var state = StateOf(queue);
        using var connection = _dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        // The lock and the reads in one round trip (a claim sits between two jobs of its node): the statements of a
        // batch run in order, each reading after the lock, so every claim committed before it is seen (read
        // committed: a snapshot per statement). The commit need not wait for the disk (synchronous_commit off): the
        // job's first write after the claim (its record says running) commits synchronously and so flushes the claim
        // too, and a claim lost with a crash of PostgreSQL before that is a job claimable again, as if its node died.
        bool paused;
        long counter;
        Dictionary<FairQueueEntry, (long RowId, long JobId)> rows;
        Dictionary<string, long> served;
        using (var batch = new NpgsqlBatch(connection))
        {
            batch.BatchCommands.Add(LockCommand(queue));
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('synchronous_commit', 'off', true)"));
            batch.BatchCommands.Add(QueueRowCommand(queue));
            foreach (var read in ClaimableCommands(queue)) batch.BatchCommands.Add(read);
            using var reader = batch.ExecuteReader();
            reader.NextResult();
            reader.NextResult();
            (paused, counter) = ReadQueueRow(reader);
            reader.NextResult();
            (rows, served) = ReadClaimable(reader);
        }
        if (paused) return null;
        if (FairOrder.PickNext(rows.Keys, served) is not { } pick) return null;
        var (rowId, jobId) = rows[pick];
        // The row is checked again as it is updated (a holder that renewed its claim meanwhile keeps the job), and the
        // user is marked served in the same statement, only if the row was claimed.
        using (var claim = new NpgsqlCommand($"""
            WITH c AS (
                UPDATE {_schema}.jobqueue SET fetchedat = clock_timestamp()
                WHERE id = @row AND (fetchedat IS NULL OR fetchedat < clock_timestamp() - @invisibility)
                RETURNING fetchedat),
            q AS (UPDATE {_schema}.fair_queue SET counter = @tick WHERE queue = @queue AND EXISTS (SELECT 1 FROM c)),
            s AS (INSERT INTO {_schema}.fair_served (queue, userid, tick) SELECT @queue, @user, @tick FROM c
                ON CONFLICT (queue, userid) DO UPDATE SET tick = excluded.tick)
            SELECT fetchedat, pg_notify('{Channel}', @queue || ':' || @origin) FROM c
            """, connection))
        {
            claim.Parameters.AddWithValue("row", rowId);
            claim.Parameters.AddWithValue("invisibility", _options.InvisibilityTimeout);
            claim.Parameters.AddWithValue("queue", queue);
            claim.Parameters.AddWithValue("tick", counter + 1);
            claim.Parameters.AddWithValue("user", pick.UserId);
            claim.Parameters.AddWithValue("origin", _origin);
            if (claim.ExecuteScalar() is not DateTime claimedAt) return null;
            transaction.Commit();
            Changed(queue, state);
            return (rowId, jobId, claimedAt);
        }
    }

    private NpgsqlBatchCommand QueueRowCommand(string queue)
    {
        var command = new NpgsqlBatchCommand($"SELECT paused, counter FROM {_schema}.fair_queue WHERE queue = $1");
        command.Parameters.Add(new NpgsqlParameter { Value = queue });
        return command;
    }

    private static (bool Paused, long Counter) ReadQueueRow(NpgsqlDataReader reader) =>
        reader.Read() ? (reader.GetBoolean(0), reader.GetInt64(1)) : (false, 0);

    // The claimable rows (one query, joined to their places), then the served ticks: two result sets.
    private NpgsqlBatchCommand[] ClaimableCommands(string queue)
    {
        var rows = new NpgsqlBatchCommand($"""
            SELECT q.id, q.jobid, f.userid, f.priority, f.seq, f.ref
            FROM {_schema}.jobqueue q JOIN {_schema}.fair_entry f ON f.queueid = q.id
            WHERE q.queue = $1 AND (q.fetchedat IS NULL OR q.fetchedat < clock_timestamp() - $2)
            """);
        rows.Parameters.Add(new NpgsqlParameter { Value = queue });
        rows.Parameters.Add(new NpgsqlParameter { Value = _options.InvisibilityTimeout });
        var served = new NpgsqlBatchCommand($"SELECT userid, tick FROM {_schema}.fair_served WHERE queue = $1");
        served.Parameters.Add(new NpgsqlParameter { Value = queue });
        return [rows, served];
    }

    // Reads the two result sets of ClaimableCommands: the rows keyed by entry with their row and job ids, and the served ticks.
    private static (Dictionary<FairQueueEntry, (long RowId, long JobId)> Rows, Dictionary<string, long> Served) ReadClaimable(NpgsqlDataReader reader)
    {
        var rows = new Dictionary<FairQueueEntry, (long, long)>(ReferenceEqualityComparer.Instance);
        while (reader.Read())
        {
            var jobId = reader.GetInt64(1);
            var entry = new FairQueueEntry(jobId.ToString(CultureInfo.InvariantCulture), reader.GetString(2), reader.GetInt32(3), reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5));
            rows[entry] = (reader.GetInt64(0), jobId);
        }
        reader.NextResult();
        var served = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.Read()) served[reader.GetString(0)] = reader.GetInt64(1);
        return (rows, served);
    }

    private void SetPaused(string queue, bool paused)
    {
        var state = StateOf(queue);
        using (var command = _dataSource.CreateCommand($"""
            WITH s AS (UPDATE {_schema}.fair_queue SET paused = $2 WHERE queue = $1 RETURNING queue)
            SELECT pg_notify('{Channel}', $1 || ':' || $3) FROM s
            """))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = queue });
            command.Parameters.Add(new NpgsqlParameter { Value = paused });
            command.Parameters.Add(new NpgsqlParameter { Value = _origin });
            command.ExecuteNonQuery();
        }
        Changed(queue, state);
    }

    private void Lock(NpgsqlConnection connection, string queue)
    {
        using var batch = new NpgsqlBatch(connection) { BatchCommands = { LockCommand(queue) } };
        batch.ExecuteNonQuery();
    }

    private NpgsqlBatchCommand LockCommand(string queue)
    {
        var command = new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock(hashtext($1)), set_config('{OriginSetting}', $2, true)");
        command.Parameters.Add(new NpgsqlParameter { Value = $"newbie_fair:{_options.SchemaName}:{queue}" });
        command.Parameters.Add(new NpgsqlParameter { Value = _origin });
        return command;
    }

    // The snapshot of this queue's latest change, loaded now (one reader does it, the others wait for it) if a change came since.
    private Loaded Current(string queue)
    {
        var state = StateOf(queue);
        var changes = Volatile.Read(ref state.Changes);
        var loaded = Volatile.Read(ref state.Loaded);
        if (loaded.Snapshot.Version == changes) return loaded;
        lock (state.Gate)
        {
            changes = Volatile.Read(ref state.Changes);
            if (state.Loaded.Snapshot.Version == changes) return state.Loaded;
            loaded = Load(queue, changes);
            Volatile.Write(ref state.Loaded, loaded);
            return loaded;
        }
    }

    private Loaded Load(string queue, long version)
    {
        Interlocked.Increment(ref _loads);
        using var connection = _dataSource.OpenConnection();
        // One consistent view of the rows, the served ticks and the counter.
        using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
        bool paused;
        long counter;
        Dictionary<FairQueueEntry, (long RowId, long JobId)> rows;
        Dictionary<string, long> served;
        using (var batch = new NpgsqlBatch(connection))
        {
            batch.BatchCommands.Add(QueueRowCommand(queue));
            foreach (var read in ClaimableCommands(queue)) batch.BatchCommands.Add(read);
            using var reader = batch.ExecuteReader();
            (paused, counter) = ReadQueueRow(reader);
            reader.NextResult();
            (rows, served) = ReadClaimable(reader);
        }
        transaction.Commit();
        return new Loaded(new FairQueueSnapshot(version, FairOrder.Order(rows.Keys, served, counter), 0), paused);
    }

    private void Changed(string queue, QueueState state)
    {
        Interlocked.Increment(ref state.Changes);
        Signal.Raise(queue);
        FairQueueChanged?.Invoke(queue);
    }

    private QueueState StateOf(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return _queues.TryGetValue(queue, out var state)
            ? state
            : throw new ArgumentException($"'{queue}' is not a fair queue of this storage.", nameof(queue));
    }

    private async Task ListenAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(stopping);
                connection.Notification += (_, e) =>
                {
                    var (queue, origin) = e.Payload.IndexOf(':', StringComparison.Ordinal) is var at and >= 0 ? (e.Payload[..at], e.Payload[(at + 1)..]) : (e.Payload, "");
                    if (origin != _origin && _queues.TryGetValue(queue, out var state)) Changed(queue, state);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel}", connection)) await listen.ExecuteNonQueryAsync(stopping);
                // Whatever changed before LISTEN took effect went unheard: every queue counts as changed.
                foreach (var (queue, state) in _queues) Changed(queue, state);
                _listening.TrySetResult();
                while (true) await connection.WaitAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
            {
                _logger.LogWarning(e, "Listening for fair queue changes failed; retrying in 1 s");
                try { await Task.Delay(TimeSpan.FromSeconds(1), stopping); }
                catch (OperationCanceledException) { return; }
            }
        }
    }

    // Tables and triggers of the fair queues, idempotent, under an advisory lock so that nodes starting together do not race.
    private void Install()
    {
        using var connection = _dataSource.OpenConnection();
        using var transaction = connection.BeginTransaction();
        using (var command = new NpgsqlCommand($$"""
            SELECT pg_advisory_xact_lock(hashtext('newbie_fair_install'));
            CREATE TABLE IF NOT EXISTS {{_schema}}.fair_queue (
                queue text PRIMARY KEY,
                paused boolean NOT NULL DEFAULT false,
                counter bigint NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS {{_schema}}.fair_served (
                queue text NOT NULL,
                userid text NOT NULL,
                tick bigint NOT NULL,
                PRIMARY KEY (queue, userid));
            CREATE TABLE IF NOT EXISTS {{_schema}}.fair_entry (
                queueid bigint PRIMARY KEY REFERENCES {{_schema}}.jobqueue (id) ON DELETE CASCADE,
                queue text NOT NULL,
                userid text NOT NULL,
                priority integer NOT NULL,
                seq bigint NOT NULL,
                ref text NULL);
            CREATE INDEX IF NOT EXISTS ix_fair_entry_queue ON {{_schema}}.fair_entry (queue);

            CREATE OR REPLACE FUNCTION {{_schema}}.fair_entry_changed() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                PERFORM pg_notify('{{Channel}}', (CASE WHEN TG_OP = 'DELETE' THEN OLD.queue ELSE NEW.queue END) || ':' || coalesce(current_setting('{{OriginSetting}}', true), ''));
                RETURN NULL;
            END $f$;
            CREATE OR REPLACE TRIGGER fair_entry_changed AFTER INSERT OR UPDATE OR DELETE ON {{_schema}}.fair_entry
                FOR EACH ROW EXECUTE FUNCTION {{_schema}}.fair_entry_changed();

            -- A fair row fetched or handed back (Hangfire's own requeue, a worker's shutdown) changes the claim order.
            -- The check is in the body, not in a WHEN clause, so Hangfire's future migrations of the column stay free.
            CREATE OR REPLACE FUNCTION {{_schema}}.fair_jobqueue_fetched() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                IF (OLD.fetchedat IS NULL) <> (NEW.fetchedat IS NULL)
                   AND EXISTS (SELECT 1 FROM {{_schema}}.fair_entry WHERE queueid = NEW.id) THEN
                    PERFORM pg_notify('{{Channel}}', NEW.queue || ':' || coalesce(current_setting('{{OriginSetting}}', true), ''));
                END IF;
                RETURN NULL;
            END $f$;
            CREATE OR REPLACE TRIGGER fair_jobqueue_fetched AFTER UPDATE ON {{_schema}}.jobqueue
                FOR EACH ROW EXECUTE FUNCTION {{_schema}}.fair_jobqueue_fetched();

            -- A waiting job that ends (cancelled, or finished elsewhere) leaves the fair queue in the same transaction,
            -- so places skip it at once; a fetched one stays for its worker to acknowledge.
            CREATE OR REPLACE FUNCTION {{_schema}}.fair_job_finished() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN
                IF NEW.statename IS DISTINCT FROM OLD.statename AND NEW.statename = ANY (ARRAY['{{string.Join("','", FinalStates)}}']) THEN
                    DELETE FROM {{_schema}}.jobqueue q USING {{_schema}}.fair_entry f
                    WHERE f.queueid = q.id AND q.jobid = NEW.id AND q.fetchedat IS NULL;
                END IF;
                RETURN NULL;
            END $f$;
            CREATE OR REPLACE TRIGGER fair_job_finished AFTER UPDATE ON {{_schema}}.job
                FOR EACH ROW EXECUTE FUNCTION {{_schema}}.fair_job_finished();

            INSERT INTO {{_schema}}.fair_queue (queue) SELECT unnest(@queues::text[]) ON CONFLICT (queue) DO NOTHING;
            """, connection))
        {
            command.Parameters.AddWithValue("queues", _queues.Keys.ToArray());
            command.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private sealed record Loaded(FairQueueSnapshot Snapshot, bool Paused);

    private sealed class QueueState
    {
        public readonly Lock Gate = new();
        // Starts ahead of the empty snapshot's version, so the first reader loads.
        public long Changes = 1;
        public Loaded Loaded = new(new FairQueueSnapshot(0, [], 0), false);
    }
}
