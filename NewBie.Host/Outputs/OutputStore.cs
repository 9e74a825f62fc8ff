using System.Security.Cryptography;
using System.Text;
using NewBie.Host.Jobs;
using NewBie.Host.Storage;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Outputs;

/// <summary>
/// Image files under outputs/&lt;user&gt;/&lt;job&gt;/&lt;n&gt;.png. Every path segment is generated here: the user folder is a
/// hash of the user id (never header text), the job folder the server-made job id, the file the image index.
/// Writes are atomic (temp file, flush, rename), so a reader or a crash never sees half an image, and a re-run
/// replaces the files of an interrupted run instead of adding a second set.
/// </summary>
public sealed class OutputStore(DataDirectory dataDirectory)
{
    public string Root => dataDirectory.OutputsPath;

    public static string UserFolder(string userId) =>
        "u" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(userId)))[..24];

    /// <summary>
    /// Writes the images of a run; each PNG carries the generation parameters in its text chunks. They are all encoded
    /// before the job's folder is made, so a run whose images cannot be encoded leaves no folder behind; when a write
    /// fails the partial set is removed (a job has all its images or none), and a full disk throws
    /// <see cref="InsufficientStorageException"/>. Other images on the volume are untouched: every write goes to a temp
    /// file first.
    /// </summary>
    public List<JobImage> Write(JobRecord job, GenerationRequest request, string modelId, IReadOnlyList<GeneratedImage> images)
    {
        var folder = Path.Combine(UserFolder(job.UserId), job.Id);
        var encoded = images.Select(image => (Image: image, Png: PngWriter.Encode(image, GenerationMetadata.For(request, image, modelId)))).ToList();
        var written = new List<JobImage>(images.Count);
        try
        {
            var directory = Directory.CreateDirectory(Path.Combine(Root, folder));
            // A run killed in the middle of a write (kill -9, power loss) leaves its temp file behind; this run owns the
            // folder now (a job never runs twice at once), so what an earlier attempt left half-written goes.
            foreach (var stale in directory.EnumerateFiles("*.tmp")) stale.Delete();
            foreach (var (image, png) in encoded)
            {
                var file = Path.Combine(folder, $"{image.Index}.png");
                WriteAtomically(Path.Combine(Root, file), png);
                written.Add(new JobImage { Index = image.Index, Width = image.Width, Height = image.Height, Seed = image.Seed, File = file });
            }
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            try { Delete(job); } catch (IOException) { }
            throw new InsufficientStorageException($"The outputs volume is full; the images of job {job.Id} could not be written.", e);
        }
        catch
        {
            try { Delete(job); } catch (IOException) { }
            throw;
        }
        return written;
    }

    public string PathOf(JobImage image) => Path.Combine(Root, image.File);

    /// <summary>Longest side of a thumbnail, in pixels.</summary>
    public const int ThumbnailSide = 256;

    /// <summary>
    /// The image's thumbnail (at most <see cref="ThumbnailSide"/> a side), made on first request and kept beside the
    /// image, so it goes when the job's folder goes. Null when the image itself is gone.
    /// </summary>
    public string? ThumbnailOf(JobImage image)
    {
        var source = PathOf(image);
        var thumbnail = Path.ChangeExtension(source, ".thumb.png");
        if (File.Exists(thumbnail)) return thumbnail;
        if (!File.Exists(source)) return null;
        var png = PngReader.Read(File.ReadAllBytes(source));
        var (width, height, rgb) = Shrink(png.Width, png.Height, png.Rgb, ThumbnailSide);
        // Two first requests at once both write; the atomic rename makes either result whole.
        WriteAtomically(thumbnail, PngWriter.Encode(width, height, rgb));
        return thumbnail;
    }

    /// <summary>Bytes of every file the user's jobs keep (images and thumbnails): what the per-user storage cap counts.</summary>
    public long BytesUsedBy(string userId)
    {
        var folder = new DirectoryInfo(Path.Combine(Root, UserFolder(userId)));
        return folder.Exists ? folder.EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;
    }

    /// <summary>Deletes one image file and its thumbnail.</summary>
    public void Delete(JobImage image)
    {
        var path = PathOf(image);
        File.Delete(Path.ChangeExtension(path, ".thumb.png"));
        File.Delete(path);
    }

    /// <summary>Box-filter downscale (the mean of each source block), keeping the aspect ratio.</summary>
    internal static (int Width, int Height, byte[] Rgb) Shrink(int width, int height, byte[] rgb, int maxSide)
    {
        var scale = Math.Min(1.0, (double)maxSide / Math.Max(width, height));
        int w = Math.Max(1, (int)Math.Round(width * scale)), h = Math.Max(1, (int)Math.Round(height * scale));
        var output = new byte[w * h * 3];
        for (var y = 0; y < h; y++)
        {
            int y0 = y * height / h, y1 = Math.Max(y0 + 1, (y + 1) * height / h);
            for (var x = 0; x < w; x++)
            {
                int x0 = x * width / w, x1 = Math.Max(x0 + 1, (x + 1) * width / w);
                int r = 0, g = 0, b = 0;
                for (var sy = y0; sy < y1; sy++)
                    for (var sx = x0; sx < x1; sx++)
                    {
                        var o = (sy * width + sx) * 3;
                        r += rgb[o];
                        g += rgb[o + 1];
                        b += rgb[o + 2];
                    }
                var n = (y1 - y0) * (x1 - x0);
                var t = (y * w + x) * 3;
                output[t] = (byte)(r / n);
                output[t + 1] = (byte)(g / n);
                output[t + 2] = (byte)(b / n);
            }
        }
        return (w, h, output);
    }

    public void Delete(JobRecord job)
    {
        var folder = Path.Combine(Root, UserFolder(job.UserId), job.Id);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

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

/// <summary>The outputs could not be written for want of space; the job fails with insufficient_storage.</summary>
public sealed class InsufficientStorageException(string message, Exception inner) : IOException(message, inner);
