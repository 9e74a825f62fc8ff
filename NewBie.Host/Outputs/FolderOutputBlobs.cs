using NewBie.Host.Jobs;

namespace NewBie.Host.Outputs;

/// <summary>
/// Outputs as files under one folder (the data folder's outputs/, which may be a shared mount). Writes are atomic (temp
/// file, flush, rename), so a reader or a crash never sees half an image; a full volume is insufficient_storage.
/// </summary>
public sealed class FolderOutputBlobs(string root) : IOutputBlobs
{
    public string Root { get; } = Path.GetFullPath(root);

    public string Location => Root;

    public string? LocalFolder => Root;

    /// <summary>The file of a key. Keys are made by OutputStore; one that would leave the folder is refused all the same.</summary>
    public string PathOf(string key)
    {
        var path = Path.GetFullPath(Path.Combine(Root, key.Replace('/', Path.DirectorySeparatorChar)));
        if (!path.StartsWith(Root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"The key {key} is outside the outputs folder.", nameof(key));
        return path;
    }

    public Task PutAsync(string key, byte[] bytes, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            WriteAtomically(path, bytes);
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            throw new OutputStoreException(JobErrorCodes.InsufficientStorage, $"The outputs volume ({Root}) is full.", e);
        }
        return Task.CompletedTask;
    }

    public Task<OutputBlob?> OpenAsync(string key, CancellationToken cancellationToken)
    {
        var path = PathOf(key);
        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 81920, useAsync: true);
            return Task.FromResult<OutputBlob?>(new OutputBlob(stream, stream.Length, File.GetLastWriteTimeUtc(path)));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Task.FromResult<OutputBlob?>(null);
        }
    }

    public Task<IReadOnlyDictionary<string, long>> ListAsync(string prefix, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyDictionary<string, long>>(Files(prefix).ToDictionary(f => KeyOf(f.FullName), f => f.Length, StringComparer.Ordinal));

    public Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken)
    {
        foreach (var key in keys) File.Delete(PathOf(key));
        return Task.CompletedTask;
    }

    public Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var folder = new DirectoryInfo(PathOf(prefix.TrimEnd('/')));
        if (!folder.Exists) return Task.FromResult(0L);
        var bytes = folder.EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        folder.Delete(recursive: true);
        return Task.FromResult(bytes);
    }

    private IEnumerable<FileInfo> Files(string prefix)
    {
        var folder = new DirectoryInfo(PathOf(prefix.TrimEnd('/')));
        return folder.Exists ? folder.EnumerateFiles("*", SearchOption.AllDirectories) : [];
    }

    private string KeyOf(string path) => Path.GetRelativePath(Root, path).Replace(Path.DirectorySeparatorChar, '/');

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temp = $"{path}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch (IOException)
        {
            // A half-written temp file on a full disk would hold on to the very space that ran out.
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>ENOSPC (28) / EDQUOT (122) on Unix, ERROR_DISK_FULL (112) / ERROR_HANDLE_DISK_FULL (39) on Windows.</summary>
    public static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is 28 or 122 or 112 or 39;
}
