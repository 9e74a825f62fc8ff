namespace NewBie.Host.Storage;

public sealed class StorageOptions
{
    public const string Section = "Storage";

    public const string LiteDb = "litedb", Postgres = "postgres";

    /// <summary>
    /// Where the app's data lives: "litedb" (default; app.db in the data folder, one process) or "postgres" (the
    /// database of ConnectionStrings:Postgres, shared by every node). Restart needed.
    /// </summary>
    public string Provider { get; set; } = LiteDb;

    /// <summary>Folder of the LiteDB files, the lock file and outputs/. Default "data" (relative to the working folder). Restart needed.</summary>
    public string DataDir { get; set; } = "data";

    /// <summary>
    /// New work is refused (507 insufficient_storage) while the outputs or the data volume has fewer free bytes than
    /// this; 0 turns the check off. Default 256 MiB: room for the running job's images and the databases' growth.
    /// </summary>
    public long MinFreeBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Whether the configuration asks for PostgreSQL (Storage:Provider=postgres, in any case).</summary>
    public static bool UsesPostgres(IConfiguration configuration) =>
        string.Equals(configuration[$"{Section}:{nameof(Provider)}"], Postgres, StringComparison.OrdinalIgnoreCase);
}
