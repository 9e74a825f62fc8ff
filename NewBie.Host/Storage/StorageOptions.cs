namespace NewBie.Host.Storage;

public sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>Folder of the LiteDB files, the lock file and outputs/. Default "data" (relative to the working folder). Restart needed.</summary>
    public string DataDir { get; set; } = "data";

    /// <summary>
    /// New work is refused (507 insufficient_storage) while the outputs or the data volume has fewer free bytes than
    /// this; 0 turns the check off. Default 256 MiB: room for the running job's images and the databases' growth.
    /// </summary>
    public long MinFreeBytes { get; set; } = 256L * 1024 * 1024;
}
