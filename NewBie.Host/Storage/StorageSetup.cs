using Npgsql;
using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage.Postgres;

namespace NewBie.Host.Storage;

public static class StorageSetup
{
    private const string UnknownProvider = "Storage:Provider must be litedb (the default) or postgres.";

    private const string MissingConnectionString =
        "Storage:Provider=postgres needs ConnectionStrings:Postgres (an Npgsql connection string: Host=…;Database=…;Username=…;Password=…).";

    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataDir), "Storage:DataDir is required.")
            .Validate(o => o.MinFreeBytes >= 0, "Storage:MinFreeBytes must be 0 or more.")
            .Validate(o => o.Provider.ToLowerInvariant() is StorageOptions.LiteDb or StorageOptions.Postgres, UnknownProvider)
            .Validate<IConfiguration>((o, configuration) => !string.Equals(o.Provider, StorageOptions.Postgres, StringComparison.OrdinalIgnoreCase)
                || !string.IsNullOrWhiteSpace(configuration.GetConnectionString("Postgres")), MissingConnectionString)
            .ValidateOnStart();
        builder.Services.AddSingleton<DataDirectory>();
        // The node's own LiteDB file: all the app's data in the embedded mode; with PostgreSQL only what stays per node
        // (run-time statistics, the storage probe).
        builder.Services.AddSingleton<AppDatabase>();

        // The one place where the stores are chosen: the records of jobs, accounts, sessions (security stamps on the
        // users), usage, webhook secrets and studio settings live in LiteDB, or all in PostgreSQL.
        var services = builder.Services;
        if (StorageOptions.UsesPostgres(builder.Configuration))
        {
            RaiseThreadPoolFloor();
            // One data source per process (its connection pool), made on first use: after the start-up validation
            // has said what is missing.
            services.AddSingleton(sp => NpgsqlDataSource.Create(sp.GetRequiredService<IConfiguration>().GetConnectionString("Postgres")!));
            services.AddSingleton<PostgresDatabase>();
            services.AddSingleton<IJobRecords, PostgresJobRecords>();
            services.AddSingleton<IUserStore, PostgresUserStore>();
            services.AddSingleton<IUsageStore, PostgresUsageStore>();
            services.AddSingleton<IWebhookSecretStore, PostgresWebhookSecretStore>();
            services.AddSingleton<Studio.IStudioSettingsStore, PostgresStudioSettingsStore>();
            // Every node's writes and deletes move one shared count: the storage cap is the same on every node.
            services.AddSingleton<IOutputUsage, PostgresOutputUsage>();
        }
        else
        {
            services.AddSingleton<IJobRecords, LiteDbJobRecords>();
            services.AddSingleton<IUserStore, LiteDbUserStore>();
            services.AddSingleton<IUsageStore, LiteDbUsageStore>();
            services.AddSingleton<IWebhookSecretStore, LiteDbWebhookSecretStore>();
            services.AddSingleton<Studio.IStudioSettingsStore, LiteDbStudioSettingsStore>();
            services.AddSingleton<IOutputUsage>(sp => new InMemoryOutputUsage(sp.GetRequiredService<TimeProvider>(),
                sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<OutputsOptions>>().Value.UsageRefresh));
        }
        builder.Services.AddSingleton<IFreeSpaceProbe, DriveFreeSpaceProbe>();
        builder.Services.AddSingleton<StorageSpace>();
        builder.Services.AddSingleton(TimeProvider.System);
        return builder;
    }

    /// <summary>The fewest pool threads a node on PostgreSQL keeps ready (<see cref="RaiseThreadPoolFloor"/>).</summary>
    internal const int PostgresMinWorkerThreads = 64;

    /// <summary>
    /// On PostgreSQL every store call and Hangfire's storage block a thread for a network round trip, so with the default
    /// floor (one thread per core) a burst waited on the pool's slow growth (about two threads a second): 20 submits
    /// at once took 10 s on 2 cores, and each job of the several-node bench carried ~0.9 s of it. The embedded mode keeps
    /// the default: its calls are short and CPU-bound under one lock, and the same floor there cost a status read about
    /// 40 % of its rate and doubled its p99 in the serving-core bench (BENCHMARKS.md, serving core, 2026-12-03).
    /// </summary>
    internal static void RaiseThreadPoolFloor()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        if (workers < PostgresMinWorkerThreads) ThreadPool.SetMinThreads(PostgresMinWorkerThreads, io);
    }

    /// <summary>
    /// One process per data folder: takes its lock before anything else touches it. False (after saying why on stderr)
    /// when another process holds it.
    /// </summary>
    public static bool TryLockDataDirectory(this WebApplication app)
    {
        try
        {
            app.Services.GetRequiredService<DataDirectory>();
            return true;
        }
        catch (DataDirectoryInUseException e)
        {
            Console.Error.WriteLine(e.Message);
            return false;
        }
    }

    /// <summary>
    /// The app's stores as the configuration chooses them, outside a server (the <c>users</c> and <c>keys</c> verbs):
    /// the same Storage:Provider, Storage:DataDir and ConnectionStrings:Postgres that serve reads, the same store classes.
    /// The embedded mode takes the data folder's lock (<see cref="DataDirectoryInUseException"/> while a server runs on
    /// it); PostgreSQL takes none, since the database is shared by running nodes anyway and each change is a transaction.
    /// Throws <see cref="StorageConfigurationException"/> for settings that cannot work.
    /// </summary>
    public static OpenedStores OpenStores(IConfiguration configuration)
    {
        var options = new StorageOptions();
        configuration.GetSection(StorageOptions.Section).Bind(options);
        if (options.Provider.ToLowerInvariant() is not (StorageOptions.LiteDb or StorageOptions.Postgres)) throw new StorageConfigurationException(UnknownProvider);
        if (!StorageOptions.UsesPostgres(configuration)) return OpenDataFolder(options.DataDir);
        if (configuration.GetConnectionString("Postgres") is not { Length: > 0 } connectionString) throw new StorageConfigurationException(MissingConnectionString);
        return OpenPostgres(connectionString);
    }

    /// <summary>A data folder's app.db, under the folder's lock (as serve takes it).</summary>
    public static OpenedStores OpenDataFolder(string dataDir)
    {
        var directory = new DataDirectory(Microsoft.Extensions.Options.Options.Create(new StorageOptions { DataDir = dataDir }));
        try
        {
            var database = new AppDatabase(directory);
            return new OpenedStores(AppStores.Of(database), $"the data folder {directory.Root}", directory, [database, directory]);
        }
        catch
        {
            directory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A PostgreSQL database, its schema brought up to date first (a fresh database gets its tables), as a node does at
    /// start. A connection string that is not one is a <see cref="StorageConfigurationException"/>; an unreachable
    /// server an <see cref="NpgsqlException"/>.
    /// </summary>
    public static OpenedStores OpenPostgres(string connectionString)
    {
        NpgsqlDataSource source;
        try
        {
            source = NpgsqlDataSource.Create(connectionString);
        }
        catch (ArgumentException e)
        {
            throw new StorageConfigurationException($"The PostgreSQL connection string is not an Npgsql connection string: {e.Message}");
        }
        try
        {
            var database = new PostgresDatabase(source);
            return new OpenedStores(AppStores.Of(database), $"the PostgreSQL database '{new NpgsqlConnectionStringBuilder(connectionString).Database}'", null, [source]);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }
}

/// <summary>Storage settings that cannot work (an unknown provider, postgres without a connection string).</summary>
public sealed class StorageConfigurationException(string message) : Exception(message);

/// <summary>A set of stores opened by <see cref="StorageSetup.OpenStores"/>; disposing it closes the database and releases the data folder.</summary>
public sealed class OpenedStores(AppStores stores, string description, DataDirectory? dataDirectory, IDisposable[] resources) : IDisposable
{
    public AppStores Stores => stores;

    /// <summary>Where the stores are, in words: "the data folder …" or "the PostgreSQL database '…'".</summary>
    public string Description => description;

    /// <summary>The data folder, in the embedded mode; null with PostgreSQL.</summary>
    public DataDirectory? DataDirectory => dataDirectory;

    public void Dispose()
    {
        foreach (var resource in resources) resource.Dispose();
    }
}
