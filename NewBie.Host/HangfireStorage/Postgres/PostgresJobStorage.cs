using Hangfire.PostgreSql;
using Npgsql;

namespace NewBie.Host.HangfireStorage.Postgres;

/// <summary>
/// Hangfire's PostgreSQL storage as the nodes share it: its own schema in the app's database (created or migrated by
/// Hangfire.PostgreSql at open), sliding invisibility (a running job's claim is renewed, so it is never run twice at
/// once, and a dead node's job is claimable again after <see cref="PostgresQueueOptions.InvisibilityTimeout"/>), long
/// polling for the plain queues, and <see cref="PostgresFairQueue"/> for the fair ones.
/// </summary>
public sealed class PostgresJobStorage : IDisposable
{
    public PostgresJobStorage(NpgsqlDataSource dataSource, PostgresQueueOptions options, ILogger<PostgresFairQueue>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Storage = new PostgreSqlStorage(new DataSourceConnectionFactory(dataSource), new PostgreSqlStorageOptions
        {
            SchemaName = options.SchemaName,
            PrepareSchemaIfNecessary = true,
            // A node that cannot reach its database fails at start instead of running without a queue.
            AllowDegradedModeWithoutStorage = false,
            UseSlidingInvisibilityTimeout = true,
            InvisibilityTimeout = options.InvisibilityTimeout,
            EnableLongPolling = true,
            QueuePollInterval = options.QueuePollInterval,
        });
        FairQueue = new PostgresFairQueue(dataSource, options, logger);
        Storage.QueueProviders.Add(new PostgresFairQueueProvider(Storage, FairQueue), options.FairQueues);
    }

    public PostgreSqlStorage Storage { get; }

    public PostgresFairQueue FairQueue { get; }

    public void Dispose() => FairQueue.Dispose();

    // Hangfire's connections come from the app's data source (one pool per node); Hangfire disposes what it gets.
    private sealed class DataSourceConnectionFactory(NpgsqlDataSource dataSource) : IConnectionFactory
    {
        public NpgsqlConnection GetOrCreateConnection() => dataSource.CreateConnection();
    }
}
