using Npgsql;
using NewBie.Host.Jobs;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// Job records in PostgreSQL, table <c>newbie_jobs</c>: the record as jsonb beside the columns it is found by. Several
/// nodes write here at once, so the submit's checks and insert, and each change of a record, are one step in the
/// database (<see cref="ISharedJobRecords"/>).
/// </summary>
public sealed class PostgresJobRecords(PostgresDatabase database) : ISharedJobRecords
{
    private readonly NpgsqlDataSource _source = database.Source;

    private const string Queued = nameof(JobStatus.Queued), Running = nameof(JobStatus.Running);

    // A miss may be a job whose submit is under way on some node, its Hangfire job already claimable: the second read
    // waits for the submits in flight (their lock, shared) and then sees what they committed.
    public JobRecord? Find(string id)
    {
        const string sql = "SELECT record FROM newbie_jobs WHERE id = $1";
        if (One(sql, Text(id)) is { } job) return job;
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        AwaitSubmits(connection, transaction);
        return Read(connection, transaction, sql, Text(id));
    }

    public JobRecord? FindByIdempotencyKey(string userId, string key) =>
        One("SELECT record FROM newbie_jobs WHERE user_id = $1 AND idempotency_key = $2", Text(userId), Text(key));

    public JobRecord? FindByHangfireJob(string hangfireJobId) =>
        One("SELECT record FROM newbie_jobs WHERE hangfire_job_id = $1", Text(hangfireJobId));

    public long LastSeq() => _source.Command("SELECT coalesce(max(seq), 0) FROM newbie_jobs").Scalar<long>();

    public void Insert(JobRecord job)
    {
        using var connection = _source.OpenConnection();
        Insert(connection, null, job);
    }

    public void Update(JobRecord job)
    {
        using var connection = _source.OpenConnection();
        Save(connection, null, job);
    }

    public void Delete(string id) => _source.Command("DELETE FROM newbie_jobs WHERE id = $1", Text(id)).Execute();

    public IReadOnlyList<JobRecord> WithStatus(JobStatus status) =>
        Many("SELECT record FROM newbie_jobs WHERE status = $1 ORDER BY seq", Text(status.ToString()));

    public IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit)
    {
        // Only the filters asked for, so that each shape of the query gets the plan of its index.
        var where = new List<string>();
        var parameters = new List<NpgsqlParameter>();
        void Filter(string condition, NpgsqlParameter value)
        {
            parameters.Add(value);
            where.Add(condition.Replace("$?", $"${parameters.Count}", StringComparison.Ordinal));
        }
        if (userId is not null) Filter("user_id = $?", Text(userId));
        if (status is { } s) Filter("status = $?", Text(s.ToString()));
        if (beforeSeq is { } before) Filter("seq < $?", Value(before));
        parameters.Add(Value(limit));
        var sql = $"SELECT record FROM newbie_jobs {(where.Count > 0 ? "WHERE " + string.Join(" AND ", where) : "")} ORDER BY seq DESC LIMIT ${parameters.Count}";
        return Many(sql, [.. parameters]);
    }

    public IReadOnlyList<JobRecord> FinishedSince(DateTime from) =>
        Many("SELECT record FROM newbie_jobs WHERE finished_at >= $1 ORDER BY seq", Timestamp(from));

    public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) =>
        Many($"SELECT record FROM newbie_jobs WHERE finished_at < $1 AND status NOT IN ('{Queued}', '{Running}') ORDER BY seq", Timestamp(cutoff));

    public (SubmitOutcome Outcome, JobRecord? Job) TryInsert(JobRecord draft, int maxQueued, int? maxActiveOfUser, Action<JobRecord>? beforeInsert = null,
        StorageCap? storageCap = null)
    {
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        // Every node's submits take turns here; each statement after the lock reads what the turns before committed.
        connection.Command(transaction, "SELECT pg_advisory_xact_lock($1, $2)", Value(PostgresSchema.LockClass), Value(PostgresSchema.SubmitLock)).Execute();
        if (draft.IdempotencyKey is { } key)
        {
            var earlier = connection.Command(transaction, "SELECT record FROM newbie_jobs WHERE user_id = $1 AND idempotency_key = $2", Text(draft.UserId), Text(key))
                .Rows(r => FromJson<JobRecord>(r.GetString(0))).FirstOrDefault();
            if (earlier is not null)
                return (earlier.RequestHash == draft.RequestHash ? SubmitOutcome.Replayed : SubmitOutcome.IdempotencyConflict, earlier);
        }
        // The storage cap's kept bytes are the count every node's writes and deletes move (PostgresOutputUsage), read
        // here in the same turn as the unfinished jobs: a job the submits before this one inserted is counted.
        var (queued, active, activeBytes, keptBytes, lastSeq) = connection.Command(transaction, $"""
            SELECT (SELECT count(*) FROM newbie_jobs WHERE status = '{Queued}'),
                   active.jobs, active.bytes,
                   (SELECT bytes FROM newbie_output_usage WHERE user_id = $1),
                   (SELECT coalesce(max(seq), 0) FROM newbie_jobs)
            FROM (SELECT count(*) AS jobs, coalesce(sum(largest_bytes), 0)::bigint AS bytes
                  FROM newbie_jobs WHERE user_id = $1 AND status IN ('{Queued}', '{Running}')) AS active
            """, Text(draft.UserId)).Rows(r => (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.IsDBNull(3) ? (long?)null : r.GetInt64(3), r.GetInt64(4))).Single();
        if (queued >= maxQueued) return (SubmitOutcome.QueueFull, null);
        if (maxActiveOfUser is { } cap && active >= cap) return (SubmitOutcome.UserQueueFull, null);
        // A user whose count is not measured yet (a listing that raced a write) is counted as the submit measured them.
        if (storageCap is { } storage && (keptBytes ?? storage.UsedBytes) + activeBytes + draft.Params.LargestBytes > storage.MaxBytes)
            return (SubmitOutcome.StorageCapExceeded, null);
        draft.Seq = lastSeq + 1;
        beforeInsert?.Invoke(draft);
        Insert(connection, transaction, draft);
        transaction.Commit();
        return (SubmitOutcome.Created, draft);
    }

    public JobRecord? Update(string id, Func<JobRecord, bool> change, bool durable = true)
    {
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        // A change that need not be durable (a step of progress, several per job on the generating thread) commits
        // without waiting for the disk: set in the read, so it costs no round trip of its own.
        var sql = durable
            ? "SELECT record FROM newbie_jobs WHERE id = $1 FOR UPDATE"
            : "SELECT record, set_config('synchronous_commit', 'off', true) FROM newbie_jobs WHERE id = $1 FOR UPDATE";
        var job = Read(connection, transaction, sql, Text(id));
        if (job is null)
        {
            AwaitSubmits(connection, transaction);
            job = Read(connection, transaction, sql, Text(id));
        }
        if (job is null) return null;
        if (change(job)) Save(connection, transaction, job);
        transaction.Commit();
        return job;
    }

    public int CountQueued() => (int)_source.Command($"SELECT count(*) FROM newbie_jobs WHERE status = '{Queued}'").Scalar<long>();

    public (int Jobs, long Bytes) Active(string userId) =>
        _source.Command($"SELECT count(*), coalesce(sum(largest_bytes), 0)::bigint FROM newbie_jobs WHERE user_id = $1 AND status IN ('{Queued}', '{Running}')", Text(userId))
            .Rows(r => ((int)r.GetInt64(0), r.GetInt64(1))).Single();

    private static void Insert(NpgsqlConnection connection, NpgsqlTransaction? transaction, JobRecord job) =>
        connection.Command(transaction, """
            INSERT INTO newbie_jobs (id, user_id, seq, status, hangfire_job_id, idempotency_key, finished_at, largest_bytes, record)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """, Columns(job)).Execute();

    private static void Save(NpgsqlConnection connection, NpgsqlTransaction? transaction, JobRecord job) =>
        connection.Command(transaction, """
            UPDATE newbie_jobs SET user_id = $2, seq = $3, status = $4, hangfire_job_id = $5, idempotency_key = $6, finished_at = $7,
                largest_bytes = $8, record = $9
            WHERE id = $1
            """, Columns(job)).Execute();

    private static NpgsqlParameter[] Columns(JobRecord job) =>
    [
        Text(job.Id), Text(job.UserId), Value(job.Seq), Text(job.Status.ToString()), Text(job.HangfireJobId), Text(job.IdempotencyKey),
        Timestamp(job.FinishedAt), Value(job.Params.LargestBytes), Jsonb(ToJson(job)),
    ];

    /// <summary>Waits until no submit holds the submit lock (taking it shared, to the end of the transaction).</summary>
    private static void AwaitSubmits(NpgsqlConnection connection, NpgsqlTransaction transaction) =>
        connection.Command(transaction, "SELECT pg_advisory_xact_lock_shared($1, $2)", Value(PostgresSchema.LockClass), Value(PostgresSchema.SubmitLock)).Execute();

    private static JobRecord? Read(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, params NpgsqlParameter[] parameters) =>
        connection.Command(transaction, sql, parameters).Rows(r => FromJson<JobRecord>(r.GetString(0))).FirstOrDefault();

    private JobRecord? One(string sql, params NpgsqlParameter[] parameters) => Many(sql, parameters).FirstOrDefault();

    private List<JobRecord> Many(string sql, params NpgsqlParameter[] parameters) =>
        _source.Command(sql, parameters).Rows(r => FromJson<JobRecord>(r.GetString(0)));
}
