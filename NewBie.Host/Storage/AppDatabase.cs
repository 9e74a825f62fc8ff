using LiteDB;
using LiteDB.Engine;

namespace NewBie.Host.Storage;

/// <summary>
/// The application's own LiteDB file (jobs, run-time statistics, fair-share counters), apart from Hangfire's.
/// One instance per process; dates are stored and read as UTC; a private mapper keeps BsonMapper.Global untouched.
/// </summary>
public sealed class AppDatabase : IDisposable
{
    public AppDatabase(DataDirectory dataDirectory)
    {
        // LiteDB's mapper trims strings and stores "" as null by default: prompts must round-trip exactly.
        var mapper = new BsonMapper { TrimWhitespace = false, EmptyStringToNull = false };
        // LiteDB keeps the collation in the file and refuses to open it with another: a new file is created with the
        // ordinal one, a file made before the collation was chosen is opened with its own and rebuilt once.
        var path = dataDirectory.AppDatabasePath;
        Database = DrainingLiteEngine.Open(new EngineSettings { Filename = path, Collation = File.Exists(path) ? null : Ordinal }, mapper);
        try
        {
            Database.UtcDate = true;
            if (Database.Collation.SortOptions != Ordinal.SortOptions) Database.Rebuild(new RebuildOptions { Collation = Ordinal });
        }
        catch
        {
            Database.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Ids, user names and Idempotency-Keys compare exactly: LiteDB's default collation ignores case, under which
    /// "k1" replays "K1" and a job id resolves in upper case.
    /// </summary>
    public static Collation Ordinal { get; } = new(System.Globalization.CultureInfo.InvariantCulture.LCID, System.Globalization.CompareOptions.Ordinal);

    public LiteDatabase Database { get; }

    /// <summary>
    /// Held by the record stores' read-modify-write steps (check-and-charge, update a user): one gate per database, so
    /// that two store instances over one file behave as one (LiteDB transactions are thread-bound, the steps short).
    /// </summary>
    public Lock Gate { get; } = new();

    public ILiteCollection<T> Collection<T>(string name) => Database.GetCollection<T>(name);

    public void Dispose() => Database.Dispose();
}
