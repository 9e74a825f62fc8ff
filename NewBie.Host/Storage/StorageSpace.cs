using Microsoft.Extensions.Options;

namespace NewBie.Host.Storage;

/// <summary>Free bytes for the caller on the volume that holds a folder (a seam so tests can fake a full disk).</summary>
public interface IFreeSpaceProbe
{
    long AvailableBytes(string folder);
}

/// <summary>statvfs on Unix, GetDiskFreeSpaceEx on Windows: DriveInfo accepts any folder on Unix and resolves its mount.</summary>
public sealed class DriveFreeSpaceProbe : IFreeSpaceProbe
{
    public long AvailableBytes(string folder) =>
        new DriveInfo(OperatingSystem.IsWindows() ? Path.GetPathRoot(Path.GetFullPath(folder))! : folder).AvailableFreeSpace;
}

/// <summary>The lowest free space of the outputs volume (when the outputs are files) and the data volume, and which folder it is on.</summary>
public sealed record SpaceCheck(bool Low, long AvailableBytes, long MinFreeBytes, string Folder)
{
    public string Describe() =>
        $"low disk space: {AvailableBytes / (1024 * 1024)} MiB free for {Folder}, below Storage:MinFreeBytes ({MinFreeBytes / (1024 * 1024)} MiB)";
}

/// <summary>
/// Whether there is room for new work. It is on the submit path, so the answer is kept for a second: a burst of
/// submits costs one statvfs per second, and space freed by an operator is seen within that second.
/// </summary>
public sealed class StorageSpace(DataDirectory dataDirectory, Outputs.IOutputBlobs outputs, IFreeSpaceProbe probe, IOptions<StorageOptions> options, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private SpaceCheck? _last;
    private DateTimeOffset _checkedAt;

    public SpaceCheck Check()
    {
        var min = options.Value.MinFreeBytes;
        if (min <= 0) return new SpaceCheck(false, long.MaxValue, 0, dataDirectory.Root);
        lock (_gate)
        {
            var now = time.GetUtcNow();
            if (_last is not null && now - _checkedAt < CacheFor) return _last;
            _last = Measure(min);
            _checkedAt = now;
            return _last;
        }
    }

    private SpaceCheck Measure(long min)
    {
        // A bucket's room is its server's business: a full one fails the job's write with insufficient_storage.
        string[] folders = outputs.LocalFolder is { } local ? [local, dataDirectory.Root] : [dataDirectory.Root];
        if (outputs.LocalFolder is { } outputsFolder) Directory.CreateDirectory(outputsFolder);
        var lowest = new SpaceCheck(false, long.MaxValue, min, folders[0]);
        foreach (var folder in folders)
        {
            long free;
            try
            {
                free = probe.AvailableBytes(folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // Unknown is not full: the write probe of /readyz reports a folder that cannot be used at all.
                continue;
            }
            if (free < lowest.AvailableBytes) lowest = new SpaceCheck(free < min, free, min, folder);
        }
        return lowest.AvailableBytes == long.MaxValue ? lowest with { Low = false } : lowest;
    }
}
