using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Outputs;

/// <summary>
/// What the output store must do whatever keeps its bytes: written once here, run against the folder
/// (<see cref="FolderOutputStoreTests"/>) and the real S3 server (<see cref="S3OutputStoreTests"/>), one fact each.
/// </summary>
public static class OutputStoreContract
{
    public static readonly TimeSpan UsageRefresh = TimeSpan.FromMinutes(5);

    /// <summary>A store over <paramref name="blobs"/> that counts in memory (the embedded mode), or with <paramref name="usage"/>.</summary>
    public static OutputStore Store(IOutputBlobs blobs, TimeProvider time, IOutputUsage? usage = null) =>
        new(blobs, usage ?? new InMemoryOutputUsage(time, UsageRefresh), time, NullLogger<OutputStore>.Instance);

    internal static readonly GenerationRequest Request = new() { Prompt = "1girl, 笑顔", NegativePrompt = "blurry", Seed = 200, Steps = 3, Width = 37, Height = 11 };

    internal static GeneratedImage Image(int index, long seed, int width = 37, int height = 11) => new(index, width, height, seed, ScriptedEngine.Pattern(width, height, seed));

    internal static JobRecord Job(string id, string user = "u") => new() { Id = id, UserId = user };

    public static async Task<byte[]> ReadAsync(OutputBlob? blob)
    {
        Assert.NotNull(blob);
        await using var content = blob.Content;
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer);
        Assert.Equal(blob.Length, buffer.Length);
        return buffer.ToArray();
    }

    public static async Task Written_png_round_trips_through_an_independent_decoder_and_carries_the_parameters(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);
        var job = Job("job2");

        var written = await store.WriteAsync(job, Request, "newbie-tiny", [Image(0, 200)], default);

        var bytes = await ReadAsync(await store.OpenAsync(job, written[0], default));
        var (w, h, decoded) = PngDecoder.Decode(bytes);
        Assert.Equal((37, 11), (w, h));
        Assert.Equal(ScriptedEngine.Pattern(37, 11, 200), decoded);
        var png = PngReader.Read(bytes);
        Assert.Equal("1girl, 笑顔", png.TextOf("prompt"));
        Assert.Equal("newbie-tiny", png.TextOf("model"));
        Assert.Contains("Seed: 200", png.TextOf("parameters"));
        Assert.Equal($"{OutputStore.UserFolder("u")}/job2/0.png", written[0].File);
    }

    public static async Task Keys_come_from_the_user_hash_and_the_job_id_never_from_user_text(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);

        await store.WriteAsync(Job("job1", "../../etc"), Request, "m", [Image(0, 1)], default);

        var keys = await blobs.ListAsync(OutputStore.UserFolder("../../etc") + "/", default);
        Assert.Equal([$"{OutputStore.UserFolder("../../etc")}/job1/0.png"], keys.Keys);
        Assert.Throws<ArgumentException>(() => OutputStore.JobPrefix(Job("../x")));
    }

    public static async Task A_rerun_replaces_the_earlier_attempts_outputs_with_exactly_one_set(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);
        var job = Job("job3");
        job.Attempts = 1;
        await store.WriteAsync(job, Request, "m", [Image(0, 1), Image(1, 2)], default);
        // What a killed attempt leaves beside the images (a folder's temp file, a bucket's stray object) goes too.
        await blobs.PutAsync(OutputStore.JobPrefix(job) + "0.png.0123456789abcdef.tmp", [1, 2, 3], default);

        job.Attempts = 2;
        var written = await store.WriteAsync(job, Request, "m", [Image(0, 7)], default);

        var keys = await blobs.ListAsync(OutputStore.JobPrefix(job), default);
        Assert.Equal([OutputStore.ImageKey(job, 0)], keys.Keys);
        Assert.Equal(ScriptedEngine.Pattern(37, 11, 7), PngDecoder.Decode(await ReadAsync(await store.OpenAsync(job, written[0], default))).Rgb);
    }

    /// <summary>A job's first attempt has no earlier outputs to remove: its write asks the store for nothing but the puts.</summary>
    public static async Task A_first_attempt_writes_without_looking_for_earlier_outputs(IOutputBlobs blobs)
    {
        var counting = new FailingBlobs(blobs, failAtPut: 0);
        var store = Store(counting, TimeProvider.System);
        var job = Job("job12");
        job.Attempts = 1;

        await store.WriteAsync(job, Request, "m", [Image(0, 1), Image(1, 2)], default);

        Assert.Equal((2, 0), (counting.Puts, counting.Lookups));
        Assert.Equal([OutputStore.ImageKey(job, 0), OutputStore.ImageKey(job, 1)], (await blobs.ListAsync(OutputStore.JobPrefix(job), default)).Keys.Order());
    }

    public static async Task A_failed_write_leaves_none_of_the_jobs_images_and_names_the_error_code(IOutputBlobs blobs)
    {
        var failing = new FailingBlobs(blobs, failAtPut: 2);
        var store = Store(failing, TimeProvider.System);
        var job = Job("job4");

        var error = await Assert.ThrowsAsync<OutputStoreException>(() => store.WriteAsync(job, Request, "m", [Image(0, 1), Image(1, 2), Image(2, 3)], default));

        Assert.Equal(JobErrorCodes.OutputsUnavailable, error.Code);
        Assert.Contains("job4", error.Message);
        Assert.Equal(2, failing.Puts);
        Assert.Empty(await blobs.ListAsync(OutputStore.JobPrefix(job), default));
    }

    public static async Task Thumbnail_is_made_on_first_request_and_kept_beside_the_image(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);
        var job = Job("job5");
        var written = await store.WriteAsync(job, Request, "m", [Image(0, 1, 512, 256)], default);

        var first = await ReadAsync(await store.OpenThumbnailAsync(job, written[0], default));
        var kept = await blobs.ListAsync(OutputStore.JobPrefix(job), default);
        var second = await ReadAsync(await store.OpenThumbnailAsync(job, written[0], default));

        var thumbnail = PngReader.Read(first);
        Assert.Equal((OutputStore.ThumbnailSide, OutputStore.ThumbnailSide / 2), (thumbnail.Width, thumbnail.Height));
        Assert.Equal(first.Length, kept[OutputStore.ThumbnailKey(job, 0)]);
        Assert.Equal(first, second);
    }

    public static async Task Missing_images_and_thumbnails_open_as_null(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);
        var job = Job("job6");
        var image = new JobImage { Index = 3 };

        Assert.Null(await store.OpenAsync(job, image, default));
        Assert.Null(await store.OpenThumbnailAsync(job, image, default));
    }

    public static async Task Deleting_a_job_or_an_image_removes_only_those_outputs(IOutputBlobs blobs)
    {
        var store = Store(blobs, TimeProvider.System);
        JobRecord one = Job("job7"), two = Job("job8"), others = Job("job9", "v");
        var images = await store.WriteAsync(one, Request, "m", [Image(0, 1), Image(1, 2)], default);
        await store.OpenThumbnailAsync(one, images[0], default);
        await store.WriteAsync(two, Request, "m", [Image(0, 1)], default);
        await store.WriteAsync(others, Request, "m", [Image(0, 1)], default);

        await store.DeleteAsync(one, images[0], default);
        Assert.Equal([OutputStore.ImageKey(one, 1)], (await blobs.ListAsync(OutputStore.JobPrefix(one), default)).Keys);
        await store.DeleteAsync(one, default);

        Assert.Empty(await blobs.ListAsync(OutputStore.JobPrefix(one), default));
        Assert.Single(await blobs.ListAsync(OutputStore.JobPrefix(two), default));
        Assert.Single(await blobs.ListAsync(OutputStore.JobPrefix(others), default));
    }

    /// <param name="usage">The count under test, on the given clock; the in-memory one when null.</param>
    public static async Task Bytes_used_are_listed_once_then_follow_this_stores_writes_and_deletes(IOutputBlobs blobs, Func<TimeProvider, IOutputUsage>? usage = null)
    {
        var time = new FakeTimeProvider();
        var store = Store(blobs, time, usage?.Invoke(time));
        var user = "usage-" + Guid.NewGuid().ToString("N");
        async Task<long> Listed() => (await blobs.ListAsync(OutputStore.UserFolder(user) + "/", default)).Values.Sum();
        JobRecord one = Job("job10", user), two = Job("job11", user);
        Assert.Equal(0, await store.BytesUsedByAsync(user, default));

        var images = await store.WriteAsync(one, Request, "m", [Image(0, 1, 300, 300), Image(1, 2)], default);
        await store.WriteAsync(two, Request, "m", [Image(0, 3)], default);
        await store.OpenThumbnailAsync(one, images[0], default);
        Assert.Equal(await Listed(), await store.BytesUsedByAsync(user, default));
        await store.DeleteAsync(one, images[1], default);
        Assert.Equal(await Listed(), await store.BytesUsedByAsync(user, default));
        await store.DeleteAsync(two, default);
        Assert.Equal(await Listed(), await store.BytesUsedByAsync(user, default));

        // Bytes that another node (or a hand) put there are not listed on every call, only once the count is old.
        await blobs.PutAsync(OutputStore.JobPrefix(two) + "0.png", new byte[1000], default);
        Assert.Equal(await Listed() - 1000, await store.BytesUsedByAsync(user, default));
        time.Advance(UsageRefresh);
        Assert.Equal(await Listed(), await store.BytesUsedByAsync(user, default));
    }

    /// <summary>The real store, whose <c>failAtPut</c>-th write fails the way a bucket that went away does.</summary>
    // Fails its failAtPut-th put (none when 0); counts the puts and the listings and deletes.
    private sealed class FailingBlobs(IOutputBlobs inner, int failAtPut) : IOutputBlobs
    {
        public int Puts;
        public int Lookups;

        public string Location => inner.Location;
        public string? LocalFolder => inner.LocalFolder;

        public Task PutAsync(string key, byte[] bytes, CancellationToken cancellationToken) =>
            ++Puts == failAtPut ? throw new OutputStoreException(JobErrorCodes.OutputsUnavailable, "the bucket went away") : inner.PutAsync(key, bytes, cancellationToken);

        public Task<OutputBlob?> OpenAsync(string key, CancellationToken cancellationToken) => inner.OpenAsync(key, cancellationToken);
        public Task<IReadOnlyDictionary<string, long>> ListAsync(string prefix, CancellationToken cancellationToken)
        {
            Lookups++;
            return inner.ListAsync(prefix, cancellationToken);
        }

        public Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken)
        {
            Lookups++;
            return inner.DeleteAsync(keys, cancellationToken);
        }

        public Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
        {
            Lookups++;
            return inner.DeletePrefixAsync(prefix, cancellationToken);
        }
    }
}
