using NewBie.Host.Accounts;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;

namespace NewBie.Host.Studio;

public enum DeleteOutcome { Deleted, NotFound, NotFinished }

/// <summary>Images today against the daily quota, and bytes kept against the storage cap (0: no cap).</summary>
public sealed record UsageDto(int ImagesToday, int ImagesPerDay, long StorageBytes, long MaxStorageBytes, int Jobs, int ActiveJobs);

/// <summary>
/// A user's own history: finished jobs and their images, what they use, and deleting them. Owner checks happen here,
/// so the API and the studio pages cannot differ on them: someone else's job is NotFound, as if it did not exist.
/// </summary>
public sealed class History(JobStore jobs, OutputStore outputs, AccountStore accounts, TimeProvider time)
{
    /// <summary>Most images in one zip download.</summary>
    public const int MaxZipImages = 500;

    public async Task<UsageDto> UsageAsync(CurrentUser user, CancellationToken cancellationToken)
    {
        var today = time.GetUtcNow().UtcDateTime.Date;
        var own = accounts.LimitsOf(accounts.FindUser(user.Id));
        var imagesToday = accounts.Usage(today).Where(u => u.UserName == user.Id && u.Day == today).Sum(u => u.ImagesRequested);
        var all = jobs.List(user.Id, null, null, int.MaxValue);
        return new UsageDto(imagesToday, own.ImagesPerDay, await outputs.BytesUsedByAsync(user.Id, cancellationToken), own.MaxStorageBytes,
            all.Count, all.Count(j => !j.IsFinished));
    }

    /// <summary>The user's finished jobs with images, newest first, whose prompt holds <paramref name="filter"/> (any case).</summary>
    public IReadOnlyList<JobRecord> Gallery(CurrentUser user, string? filter) =>
        jobs.List(user.Id, JobStatus.Succeeded, null, int.MaxValue)
            .Where(j => j.Images.Count > 0 && (string.IsNullOrWhiteSpace(filter) || j.Params.Prompt.Contains(filter.Trim(), StringComparison.OrdinalIgnoreCase)))
            .ToList();

    /// <summary>The caller's own job only (admins too: the studio is everyone's own history).</summary>
    public JobRecord? Own(CurrentUser user, string id) => jobs.Find(id) is { } job && job.UserId == user.Id ? job : null;

    /// <summary>Deletes a finished job of the user: its images, then its record (a store that fails keeps both).</summary>
    public async Task<DeleteOutcome> DeleteJobAsync(CurrentUser user, string id, CancellationToken cancellationToken)
    {
        if (Own(user, id) is not { } job) return DeleteOutcome.NotFound;
        if (!job.IsFinished) return DeleteOutcome.NotFinished;
        await outputs.DeleteAsync(job, cancellationToken);
        jobs.Delete(job.Id);
        return DeleteOutcome.Deleted;
    }

    /// <summary>Deletes one image of a finished job; the job goes too when it was its last image.</summary>
    public async Task<DeleteOutcome> DeleteImageAsync(CurrentUser user, string id, int index, CancellationToken cancellationToken)
    {
        if (Own(user, id) is not { } job || job.Images.All(i => i.Index != index)) return DeleteOutcome.NotFound;
        if (!job.IsFinished) return DeleteOutcome.NotFinished;
        if (job.Images.Count == 1) return await DeleteJobAsync(user, id, cancellationToken);
        JobImage? removed = null;
        jobs.Update(id, j =>
        {
            removed = j.Images.FirstOrDefault(i => i.Index == index);
            return removed is not null && j.Images.Remove(removed);
        });
        if (removed is not null) await outputs.DeleteAsync(job, removed, cancellationToken);
        return DeleteOutcome.Deleted;
    }

    /// <summary>Deletes every finished job of the user and its images; unfinished ones go on. Returns how many went.</summary>
    public async Task<int> DeleteAllAsync(CurrentUser user, CancellationToken cancellationToken)
    {
        var finished = jobs.List(user.Id, null, null, int.MaxValue).Where(j => j.IsFinished).ToList();
        foreach (var job in finished)
        {
            await outputs.DeleteAsync(job, cancellationToken);
            jobs.Delete(job.Id);
        }
        return finished.Count;
    }

    /// <summary>
    /// The images a zip download names: "JOB" for all of a job's images, "JOB/N" for one. Null when any of them is
    /// not the user's or does not exist (nothing partial is sent), or when there are more than <see cref="MaxZipImages"/>.
    /// </summary>
    public IReadOnlyList<(JobRecord Job, JobImage Image)>? Selection(CurrentUser user, IEnumerable<string> names)
    {
        var selected = new List<(JobRecord, JobImage)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var slash = name.IndexOf('/');
            var id = slash < 0 ? name : name[..slash];
            if (Own(user, id) is not { } job) return null;
            IEnumerable<JobImage> images = job.Images;
            if (slash >= 0)
            {
                if (!int.TryParse(name[(slash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
                    || job.Images.FirstOrDefault(i => i.Index == n) is not { } one) return null;
                images = [one];
            }
            foreach (var image in images)
                if (seen.Add($"{job.Id}/{image.Index}")) selected.Add((job, image));
        }
        return selected.Count <= MaxZipImages ? selected : null;
    }

    /// <summary>The file name an image has in downloads and zips: the job and the image index.</summary>
    public static string FileName(JobRecord job, JobImage image) => $"newbie-{job.Id}-{image.Index}.png";
}
