using Npgsql;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// The app's tables, as numbered steps. At start every node runs the steps newer than <c>newbie_schema_version</c>
/// says, all in one transaction under a transaction-scoped advisory lock: two nodes starting at once take turns, the
/// second finds nothing left to do, and a step that fails leaves the schema as it was. A step, once released, never
/// changes: a new column or index is a new step at the end.
/// <para>
/// Columns are what is looked up, ordered, counted or unique (owner, status, submit sequence, Hangfire job id,
/// Idempotency-Key, finish time); the rest of a job or a user is its record as jsonb. Names, ids and keys compare
/// byte for byte (<c>COLLATE "C"</c>): "k1" is not "K1", and names sort as ordinal strings, whatever the database's
/// default collation.
/// </para>
/// </summary>
public static class PostgresSchema
{
    /// <summary>The advisory lock class of this app's locks (the first key of pg_advisory_xact_lock(int, int)).</summary>
    public const int LockClass = 0x4E42;

    /// <summary>Held while the schema is migrated.</summary>
    public const int MigrationLock = 1;

    /// <summary>Held by a submit's check-and-insert: the queue caps are exact across nodes.</summary>
    public const int SubmitLock = 2;

    private static readonly string[] Steps =
    [
        // 1: jobs, users and keys, daily usage, webhook secrets, studio settings.
        """
        CREATE TABLE newbie_jobs (
            id text COLLATE "C" PRIMARY KEY,
            user_id text COLLATE "C" NOT NULL,
            seq bigint NOT NULL UNIQUE,
            status text NOT NULL,
            hangfire_job_id text COLLATE "C",
            idempotency_key text COLLATE "C",
            finished_at timestamptz,
            largest_bytes bigint NOT NULL,
            record jsonb NOT NULL
        );
        CREATE INDEX newbie_jobs_user_status_seq ON newbie_jobs (user_id, status, seq);
        CREATE INDEX newbie_jobs_user_seq ON newbie_jobs (user_id, seq);
        CREATE INDEX newbie_jobs_status_seq ON newbie_jobs (status, seq);
        CREATE UNIQUE INDEX newbie_jobs_idempotency ON newbie_jobs (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE INDEX newbie_jobs_hangfire ON newbie_jobs (hangfire_job_id) WHERE hangfire_job_id IS NOT NULL;
        CREATE INDEX newbie_jobs_finished ON newbie_jobs (finished_at) WHERE finished_at IS NOT NULL;

        CREATE TABLE newbie_users (
            name text COLLATE "C" PRIMARY KEY,
            record jsonb NOT NULL
        );
        CREATE TABLE newbie_api_keys (
            id text COLLATE "C" PRIMARY KEY,
            user_name text COLLATE "C" NOT NULL,
            name text NOT NULL,
            hash bytea NOT NULL,
            created_at timestamptz NOT NULL,
            last_used_at timestamptz,
            revoked_at timestamptz
        );
        CREATE INDEX newbie_api_keys_user ON newbie_api_keys (user_name, created_at);

        CREATE TABLE newbie_usage (
            user_name text COLLATE "C" NOT NULL,
            day date NOT NULL,
            images integer NOT NULL,
            PRIMARY KEY (user_name, day)
        );
        CREATE INDEX newbie_usage_day ON newbie_usage (day);

        CREATE TABLE newbie_webhook_secrets (
            user_id text COLLATE "C" PRIMARY KEY,
            secret text NOT NULL
        );
        CREATE TABLE newbie_studio_settings (
            user_id text COLLATE "C" PRIMARY KEY,
            settings jsonb NOT NULL
        );
        """,
        // 2: the nodes' heartbeats (Nodes/PostgresNodeRegistry), one row per node name.
        """
        CREATE TABLE newbie_nodes (
            name text COLLATE "C" PRIMARY KEY,
            device text NOT NULL,
            memory_plan text NOT NULL,
            state text NOT NULL,
            running_job text NULL,
            started_at timestamptz NOT NULL,
            last_seen timestamptz NOT NULL
        );
        """,
        // 3: the bytes of outputs each user keeps (PostgresOutputUsage), moved by every node's writes and deletes:
        // null until measured from the store; version moves with every change.
        """
        CREATE TABLE newbie_output_usage (
            user_id text COLLATE "C" PRIMARY KEY,
            bytes bigint,
            version bigint NOT NULL,
            measured_at timestamptz
        );
        """,
    ];

    /// <summary>The schema version this build writes.</summary>
    public static int Latest => Steps.Length;

    /// <summary>Runs the steps the database lacks; returns the version it had before.</summary>
    public static int Migrate(NpgsqlDataSource source)
    {
        using var connection = source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        connection.Command(transaction, "SELECT pg_advisory_xact_lock($1, $2)", PostgresDatabase.Value(LockClass), PostgresDatabase.Value(MigrationLock)).Execute();
        connection.Command(transaction, """
            CREATE TABLE IF NOT EXISTS newbie_schema_version (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """).Execute();
        var current = connection.Command(transaction, "SELECT coalesce(max(version), 0) FROM newbie_schema_version").Scalar<int>();
        if (current > Latest)
            throw new InvalidOperationException($"The PostgreSQL database has schema version {current}, newer than this build's {Latest}: run the newer build.");
        for (var version = current + 1; version <= Latest; version++)
        {
            connection.Command(transaction, Steps[version - 1]).Execute();
            connection.Command(transaction, "INSERT INTO newbie_schema_version (version) VALUES ($1)", PostgresDatabase.Value(version)).Execute();
        }
        transaction.Commit();
        return current;
    }
}
