namespace NewBie.Host.Storage;

public sealed class StorageOptions
{
    public const string Section = "Storage";

    /// <summary>Folder of the LiteDB files, the lock file and outputs/. Default "data" (relative to the working folder). Restart needed.</summary>
    public string DataDir { get; set; } = "data";
}
