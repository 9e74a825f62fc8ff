namespace NewBie.Host.Tests.Storage;

/// <summary>
/// Base of the store contract suites. An implementation runs the very same tests by deriving a class that passes a
/// factory: each call makes a store instance over one fresh, empty database that lives as long as the test (two
/// calls in one test are two nodes over that one database), and <paramref name="resources"/>, disposed after the
/// test, owns the database (a temp folder, a private schema). Tests are <c>[SkippableFact]</c>: a store whose server is
/// not installed here skips (see <see cref="PostgresCluster"/>).
/// </summary>
public abstract class StoreContract<TStore>(Func<TStore> factory, IDisposable? resources) : IDisposable
{
    private readonly Lazy<TStore> _store = new(factory);

    /// <summary>The test's store instance.</summary>
    protected TStore Store => _store.Value;

    /// <summary>Another instance over the same database: what a second node, or the server after a restart, sees.</summary>
    protected TStore Another() => factory();

    /// <summary>A UTC instant on a whole second, as every implementation stores it.</summary>
    protected static DateTime At(int day, int hour = 12, int minute = 0) => new(2026, 3, day, hour, minute, 0, DateTimeKind.Utc);

    public void Dispose()
    {
        resources?.Dispose();
        GC.SuppressFinalize(this);
    }
}
