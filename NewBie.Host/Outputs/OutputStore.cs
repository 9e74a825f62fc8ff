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
            Directory.CreateDirectory(Path.Combine(Root, folder));
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
