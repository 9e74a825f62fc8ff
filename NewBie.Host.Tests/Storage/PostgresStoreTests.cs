using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Storage.Postgres;
using NewBie.Host.Studio;
using NewBie.Host.Tests.Jobs;

namespace NewBie.Host.Tests.Storage;

// The very same contract suites as LiteDB's, on PostgreSQL: each test gets a database of its own on the test run's
// server, and each store instance its own data source (Another() is a second node).

public sealed class PostgresUserStoreTests() : UserStoreContract(PostgresStores.Of(out var db, d => (IUserStore)new PostgresUserStore(d)), db);

public sealed class PostgresUsageStoreTests() : UsageStoreContract(PostgresStores.Of(out var db, d => (IUsageStore)new PostgresUsageStore(d)), db);

public sealed class PostgresWebhookSecretStoreTests() : WebhookSecretStoreContract(PostgresStores.Of(out var db, d => (IWebhookSecretStore)new PostgresWebhookSecretStore(d)), db);

public sealed class PostgresStudioSettingsStoreTests() : StudioSettingsStoreContract(PostgresStores.Of(out var db, d => (IStudioSettingsStore)new PostgresStudioSettingsStore(d)), db);

public sealed class PostgresJobRecordsTests() : JobRecordsContract(PostgresStores.Of(out var db, d => (IJobRecords)new PostgresJobRecords(d)), db);

internal static class PostgresStores
{
    /// <summary>
    /// A factory of PostgreSQL stores over one new test database (which <paramref name="database"/> owns), each call a
    /// new node. The database is created on the first call, inside the test: created in the test class's constructor, a
    /// missing PostgreSQL would fail the test instead of skipping it.
    /// </summary>
    public static Func<T> Of<T>(out IDisposable database, Func<PostgresDatabase, T> create)
    {
        var db = new Lazy<PostgresTestDatabase>(PostgresCluster.CreateDatabase);
        database = new Disposer(() => { if (db.IsValueCreated) db.Value.Dispose(); });
        return () => create(new PostgresDatabase(db.Value.NewDataSource()));
    }

    private sealed class Disposer(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
