using Microsoft.Extensions.Options;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests.Storage;

/// <summary>A fresh app database in a temp folder for one test; every store instance of the test opens on it.</summary>
public sealed class LiteDbTestDatabase : IDisposable
{
    private readonly DataDirectory _directory;

    public LiteDbTestDatabase()
    {
        _directory = new DataDirectory(Options.Create(new StorageOptions { DataDir = Directory.CreateTempSubdirectory("newbie-stores-").FullName }));
        Database = new AppDatabase(_directory);
    }

    public AppDatabase Database { get; }

    public void Dispose()
    {
        Database.Dispose();
        _directory.Dispose();
        try { Directory.Delete(_directory.Root, recursive: true); } catch (IOException) { }
    }
}

public sealed class LiteDbUserStoreTests() : UserStoreContract(Stores.Of(out var db, d => new LiteDbUserStore(d)), db);


public sealed class LiteDbUsageStoreTests() : UsageStoreContract(Stores.Of(out var db, d => new LiteDbUsageStore(d)), db);

public sealed class LiteDbWebhookSecretStoreTests() : WebhookSecretStoreContract(Stores.Of(out var db, d => new LiteDbWebhookSecretStore(d)), db);

internal static class Stores
{
    /// <summary>A factory of LiteDB stores over one new test database, which <paramref name="database"/> owns.</summary>
    public static Func<T> Of<T>(out LiteDbTestDatabase database, Func<AppDatabase, T> create)
    {
        var db = new LiteDbTestDatabase();
        database = db;
        return () => create(db.Database);
    }
}

public sealed class LiteDbStudioSettingsStoreTests() : StudioSettingsStoreContract(Stores.Of(out var db, d => (NewBie.Host.Studio.IStudioSettingsStore)new LiteDbStudioSettingsStore(d)), db);
