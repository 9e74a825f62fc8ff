using Microsoft.Extensions.Options;

namespace NewBie.Host.Storage;

public sealed class DataDirectoryInUseException(string path, Exception inner)
    : Exception($"The data folder {path} is already in use by another NewBie process (lock file {Path.Combine(path, DataDirectory.LockFileName)}). Stop it or pass another --data-dir.", inner);

/// <summary>
/// The data folder, held exclusively for the life of the process: LiteDB in direct mode does not stop a second
/// process from opening the same file on Linux (it silently loses updates), so an OS-level lock on a sidecar file
/// refuses the second server at start instead.
/// </summary>
public sealed class DataDirectory : IDisposable
{
    public const string LockFileName = "newbie.lock";

    private readonly FileStream _lock;

    public DataDirectory(IOptions<StorageOptions> options)
    {
        Root = AppInfo.ResolvePath(options.Value.DataDir);
        Directory.CreateDirectory(Root);
        try
        {
            _lock = new FileStream(Path.Combine(Root, LockFileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new DataDirectoryInUseException(Root, e);
        }
        _lock.SetLength(0);
        var pid = System.Text.Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _lock.Write(pid);
        _lock.Flush();
    }

    public string Root { get; }

    public string AppDatabasePath => Path.Combine(Root, "app.db");

    public string HangfireDatabasePath => Path.Combine(Root, "hangfire.db");

    public string OutputsPath => Path.Combine(Root, "outputs");

    /// <summary>Where the built-in tiny model is written on first use.</summary>
    public string TinyModelPath => Path.Combine(Root, "tiny-model");

    public void Dispose() => _lock.Dispose();
}
