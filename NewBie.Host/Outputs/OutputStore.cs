using System.Security.Cryptography;
using System.Text;
using NewBie.Host.Jobs;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Outputs;

/// <summary>
/// The images of the jobs, kept in <see cref="IOutputBlobs"/> (a folder or an S3 bucket) under
/// &lt;user&gt;/&lt;job&gt;/&lt;n&gt;.png. Every key is made here from the job alone: the user part is a hash of the user id
/// (never header text), the job part the server-made job id, the name the image index. A job has all its images or
/// none, a re-run replaces what an earlier attempt left, and the bytes each user keeps are counted here.
/// </summary>
public sealed class OutputStore(IOutputBlobs blobs, IOutputUsage usage, TimeProvider time, ILogger<OutputStore> logger)
{
    /// <summary>Longest side of a thumbnail, in pixels.</summary>
    public const int ThumbnailSide = 256;

    public static string UserFolder(string userId) =>
        "u" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(userId)))[..24];

    /// <summary>The key prefix of a job's outputs, ending with '/'.</summary>
    public static string JobPrefix(JobRecord job)
    {
        // Job ids are made by the server; anything else here is a bug, not a path.
        if (job.Id.Length == 0 || !job.Id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"'{job.Id}' is not a job id.", nameof(job));
        return $"{UserFolder(job.UserId)}/{job.Id}/";
    }

    public static string ImageKey(JobRecord job, int index) => $"{JobPrefix(job)}{index}.png";

    public static string ThumbnailKey(JobRecord job, int index) => $"{JobPrefix(job)}{index}.thumb.png";

    /// <summary>
    /// Writes the images of a run; each PNG carries the generation parameters in its text chunks. They are all encoded
    /// before anything is stored, so a run whose images cannot be encoded leaves nothing behind. This run owns the job's
    /// outputs (a job never runs twice at once): what an earlier attempt left goes first, so a job ends with exactly one
    /// set. When a write fails the partial set is removed too (a job has all its images or none) and the failure is
    /// thrown: an <see cref="OutputStoreException"/> names the job's error code.
    /// </summary>
    public async Task<List<JobImage>> WriteAsync(JobRecord job, GenerationRequest request, string modelId, IReadOnlyList<GeneratedImage> images,
        CancellationToken cancellationToken)
    {
        var encoded = images.Select(image => (Image: image, Png: PngWriter.Encode(image, GenerationMetadata.For(request, image, modelId)))).ToList();
        var written = new List<JobImage>(images.Count);
        try
        {
            // Only a re-run can find an earlier attempt's outputs: a run's outputs are written after the write that
            // counts its attempt (JobRecord.Start), so the first attempt skips the listing, a round trip to the store.
            if (job.Attempts != 1) await DeleteAsync(job, cancellationToken);
            foreach (var (image, png) in encoded)
            {
                var key = ImageKey(job, image.Index);
                await blobs.PutAsync(key, png, cancellationToken);
                await usage.AddAsync(job.UserId, png.Length);
                written.Add(new JobImage { Index = image.Index, Width = image.Width, Height = image.Height, Seed = image.Seed, File = key });
            }
        }
        catch (Exception e)
        {
            try
            {
                await DeleteAsync(job, CancellationToken.None);
            }
            catch (Exception cleanup)
            {
                // The store that refused the write may refuse the delete too: the job has no images in its record, so
                // nothing serves these, and its re-run or retention removes them.
                logger.LogWarning("Could not remove the partial outputs of {JobId} from {Outputs}: {Error}", job.Id, blobs.Location, cleanup.Message);
            }
            if (e is OutputStoreException write) throw new OutputStoreException(write.Code, $"The images of job {job.Id} could not be written: {write.Message}", write);
            throw;
        }
        return written;
    }

    /// <summary>An image as written, with its parameters in the text chunks; null when it is gone.</summary>
    public Task<OutputBlob?> OpenAsync(JobRecord job, JobImage image, CancellationToken cancellationToken) =>
        blobs.OpenAsync(ImageKey(job, image.Index), cancellationToken);

    /// <summary>
    /// The image's thumbnail (at most <see cref="ThumbnailSide"/> a side), made on first request and kept beside the
    /// image, so it goes when the job's outputs go. Null when the image itself is gone.
    /// </summary>
    public async Task<OutputBlob?> OpenThumbnailAsync(JobRecord job, JobImage image, CancellationToken cancellationToken)
    {
        var key = ThumbnailKey(job, image.Index);
        if (await blobs.OpenAsync(key, cancellationToken) is { } existing) return existing;
        byte[] source;
        await using (var original = await OpenAsync(job, image, cancellationToken) is { } blob ? blob.Content : null)
        {
            if (original is null) return null;
            using var buffer = new MemoryStream();
            await original.CopyToAsync(buffer, cancellationToken);
            source = buffer.ToArray();
        }
        var png = PngReader.Read(source);
        var (width, height, rgb) = Shrink(png.Width, png.Height, png.Rgb, ThumbnailSide);
        var thumbnail = PngWriter.Encode(width, height, rgb);
        // Two first requests at once both write; a write is atomic, so either result is whole.
        await blobs.PutAsync(key, thumbnail, cancellationToken);
        await usage.AddAsync(job.UserId, thumbnail.Length);
        return new OutputBlob(new MemoryStream(thumbnail, writable: false), thumbnail.Length, time.GetUtcNow());
    }

    /// <summary>
    /// Bytes of everything the user's jobs keep (images and thumbnails): what the per-user storage cap counts. Listed
    /// once per user (and again after Outputs:UsageRefresh), kept up to date by the writes and deletes of this store
    /// (with PostgreSQL: of every node's store, see <see cref="IOutputUsage"/>).
    /// </summary>
    public Task<long> BytesUsedByAsync(string userId, CancellationToken cancellationToken) =>
        usage.BytesAsync(userId, async () => (await blobs.ListAsync(UserFolder(userId) + "/", cancellationToken)).Values.Sum(), cancellationToken);

    /// <summary>Deletes all of a job's outputs.</summary>
    public async Task DeleteAsync(JobRecord job, CancellationToken cancellationToken)
    {
        var freed = await blobs.DeletePrefixAsync(JobPrefix(job), cancellationToken);
        if (freed > 0) await usage.AddAsync(job.UserId, -freed);
    }

    /// <summary>Deletes one image and its thumbnail.</summary>
    public async Task DeleteAsync(JobRecord job, JobImage image, CancellationToken cancellationToken)
    {
        var keys = new[] { ImageKey(job, image.Index), ThumbnailKey(job, image.Index) };
        var listed = await blobs.ListAsync(JobPrefix(job), cancellationToken);
        await blobs.DeleteAsync(keys, cancellationToken);
        var freed = keys.Sum(k => listed.GetValueOrDefault(k));
        if (freed > 0) await usage.AddAsync(job.UserId, -freed);
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
}
