using NewBie.Host.Accounts;
using NewBie.Host.Integrations;

namespace NewBie.Host.Storage;

public static class StorageSetup
{
    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataDir), "Storage:DataDir is required.")
            .Validate(o => o.MinFreeBytes >= 0, "Storage:MinFreeBytes must be 0 or more.").ValidateOnStart();
        builder.Services.AddSingleton<DataDirectory>();
        builder.Services.AddSingleton<AppDatabase>();
        // The stores of accounts, sessions, usage and webhook secrets: LiteDB in the app database, the one place where
        // another implementation (PostgreSQL) is chosen instead.
        builder.Services.AddSingleton<IUserStore, LiteDbUserStore>();
        builder.Services.AddSingleton<IUsageStore, LiteDbUsageStore>();
        builder.Services.AddSingleton<IWebhookSecretStore, LiteDbWebhookSecretStore>();
        builder.Services.AddSingleton<Studio.IStudioSettingsStore, LiteDbStudioSettingsStore>();
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
