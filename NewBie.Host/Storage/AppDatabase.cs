using LiteDB;

namespace NewBie.Host.Storage;

/// <summary>
/// The application's own LiteDB file (jobs, run-time statistics, fair-share counters), apart from Hangfire's.
/// One instance per process; dates are stored and read as UTC; a private mapper keeps BsonMapper.Global untouched.
/// </summary>
public sealed class AppDatabase : IDisposable
{
    public AppDatabase(DataDirectory dataDirectory)
    {
        var connection = new ConnectionString { Filename = dataDirectory.AppDatabasePath, Connection = ConnectionType.Direct };
        // LiteDB's mapper trims strings and stores "" as null by default: prompts must round-trip exactly.
        var mapper = new BsonMapper { TrimWhitespace = false, EmptyStringToNull = false };
        Database = new LiteDatabase(connection, mapper) { UtcDate = true };
    }

    public LiteDatabase Database { get; }

    /// <summary>
    /// Held by the record stores' read-modify-write steps (check-and-charge, update a user): one gate per database, so
    /// that two store instances over one file behave as one (LiteDB transactions are thread-bound, the steps short).
    /// </summary>
    public Lock Gate { get; } = new();

    public ILiteCollection<T> Collection<T>(string name) => Database.GetCollection<T>(name);

    public void Dispose() => Database.Dispose();
}
