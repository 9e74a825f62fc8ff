using Npgsql;
using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Storage.Postgres;

namespace NewBie.Host.Storage;

public static class StorageSetup
{
    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataDir), "Storage:DataDir is required.")
            .Validate(o => o.MinFreeBytes >= 0, "Storage:MinFreeBytes must be 0 or more.")
            .Validate(o => o.Provider.ToLowerInvariant() is StorageOptions.LiteDb or StorageOptions.Postgres,
                "Storage:Provider must be litedb (the default) or postgres.")
            .Validate<IConfiguration>((o, configuration) => !string.Equals(o.Provider, StorageOptions.Postgres, StringComparison.OrdinalIgnoreCase)
                || !string.IsNullOrWhiteSpace(configuration.GetConnectionString("Postgres")),
                "Storage:Provider=postgres needs ConnectionStrings:Postgres (an Npgsql connection string: Host=…;Database=…;Username=…;Password=…).")
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
            // One data source per process (its connection pool), made on first use: after the start-up validation
            // has said what is missing.
            services.AddSingleton(sp => NpgsqlDataSource.Create(sp.GetRequiredService<IConfiguration>().GetConnectionString("Postgres")!));
            services.AddSingleton<PostgresDatabase>();
            services.AddSingleton<IJobRecords, PostgresJobRecords>();
            services.AddSingleton<IUserStore, PostgresUserStore>();
            services.AddSingleton<IUsageStore, PostgresUsageStore>();
            services.AddSingleton<IWebhookSecretStore, PostgresWebhookSecretStore>();
            services.AddSingleton<Studio.IStudioSettingsStore, PostgresStudioSettingsStore>();
        }
        else
        {
            services.AddSingleton<IJobRecords, LiteDbJobRecords>();
            services.AddSingleton<IUserStore, LiteDbUserStore>();
            services.AddSingleton<IUsageStore, LiteDbUsageStore>();
            services.AddSingleton<IWebhookSecretStore, LiteDbWebhookSecretStore>();
            services.AddSingleton<Studio.IStudioSettingsStore, LiteDbStudioSettingsStore>();
        }
        builder.Services.AddSingleton<IFreeSpaceProbe, DriveFreeSpaceProbe>();
        builder.Services.AddSingleton<StorageSpace>();
        builder.Services.AddSingleton(TimeProvider.System);
        return builder;
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
}
