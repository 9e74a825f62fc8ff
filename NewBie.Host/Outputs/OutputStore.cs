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

    /// <summary>Writes the images of a run; each PNG carries the generation parameters in its text chunks.</summary>
    public List<JobImage> Write(JobRecord job, GenerationRequest request, string modelId, IReadOnlyList<GeneratedImage> images)
    {
        var folder = Path.Combine(UserFolder(job.UserId), job.Id);
        Directory.CreateDirectory(Path.Combine(Root, folder));
        var written = new List<JobImage>(images.Count);
        foreach (var image in images)
        {
            var file = Path.Combine(folder, $"{image.Index}.png");
            WriteAtomically(Path.Combine(Root, file), PngWriter.Encode(image, GenerationMetadata.For(request, image, modelId)));
            written.Add(new JobImage { Index = image.Index, Width = image.Width, Height = image.Height, Seed = image.Seed, File = file });
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
        using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
