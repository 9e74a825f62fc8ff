using Microsoft.Extensions.Options;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using static NewBie.Host.Tests.Outputs.OutputStoreContract;

namespace NewBie.Host.Tests.Outputs;

/// <summary><see cref="OutputStoreContract"/> on files (Outputs:Provider=folder, the default).</summary>
public sealed class FolderOutputStoreTests : IDisposable
{
    private readonly DataDirectory _data = new(Options.Create(new StorageOptions { DataDir = Directory.CreateTempSubdirectory("newbie-out-").FullName }));
    private readonly FolderOutputBlobs _blobs;

    public FolderOutputStoreTests() => _blobs = new FolderOutputBlobs(_data.OutputsPath);

    public void Dispose()
    {
        _data.Dispose();
        Directory.Delete(_data.Root, recursive: true);
    }

    [Fact] public Task Written_png_round_trips_and_carries_the_parameters() => Written_png_round_trips_through_an_independent_decoder_and_carries_the_parameters(_blobs);
    [Fact] public Task Keys_are_the_user_hash_and_job_id() => Keys_come_from_the_user_hash_and_the_job_id_never_from_user_text(_blobs);
    [Fact] public Task A_rerun_leaves_exactly_one_set() => A_rerun_replaces_the_earlier_attempts_outputs_with_exactly_one_set(_blobs);
    [Fact] public Task A_failed_write_leaves_no_images() => A_failed_write_leaves_none_of_the_jobs_images_and_names_the_error_code(_blobs);
    [Fact] public Task A_first_attempt_only_puts() => A_first_attempt_writes_without_looking_for_earlier_outputs(_blobs);
    [Fact] public Task Thumbnail_made_once_and_kept() => Thumbnail_is_made_on_first_request_and_kept_beside_the_image(_blobs);
    [Fact] public Task Missing_outputs_open_as_null() => Missing_images_and_thumbnails_open_as_null(_blobs);
    [Fact] public Task Deletes_remove_only_their_outputs() => Deleting_a_job_or_an_image_removes_only_those_outputs(_blobs);
    [Fact] public Task Bytes_used_listed_once_then_followed() => Bytes_used_are_listed_once_then_follow_this_stores_writes_and_deletes(_blobs);

    [Theory]
    [InlineData("../../etc")]
    [InlineData("a/b\\c")]
    [InlineData("local")]
    public void User_folder_is_a_hash_never_the_user_text(string userId)
    {
        var folder = OutputStore.UserFolder(userId);

        Assert.Matches("^u[0-9a-f]{24}$", folder);
        Assert.NotEqual(OutputStore.UserFolder(userId + "x"), folder);
    }

    [Fact]
    public void A_key_that_would_leave_the_outputs_folder_is_refused() =>
        Assert.Throws<ArgumentException>(() => _blobs.PathOf("../app.db"));

    [Fact]
    public async Task A_failed_write_removes_the_jobs_folder_too()
    {
        var job = new NewBie.Host.Jobs.JobRecord { Id = "job12", UserId = "u" };
        await _blobs.PutAsync(OutputStore.ImageKey(job, 0), [1], default);

        await OutputStoreContract.Store(_blobs, TimeProvider.System).DeleteAsync(job, default);

        Assert.False(Directory.Exists(Path.Combine(_blobs.Root, OutputStore.UserFolder("u"), "job12")));
    }

    [Fact]
    public void Second_holder_of_a_data_folder_is_refused()
    {
        var error = Assert.Throws<DataDirectoryInUseException>(() => new DataDirectory(Options.Create(new StorageOptions { DataDir = _data.Root })));

        Assert.Contains(_data.Root, error.Message);
    }
}

/// <summary><see cref="OutputStoreContract"/> on the real S3 server (Outputs:Provider=s3), a fresh bucket per test.</summary>
public sealed class S3OutputStoreTests
{
    private static async Task<S3OutputBlobs> BucketAsync()
    {
        var s3 = await S3Server.SharedAsync();
        var bucket = await s3.CreateBucketAsync();
        return new S3OutputBlobs(new S3OutputsOptions
        {
            ServiceUrl = s3.ServiceUrl, Bucket = bucket, Region = S3Server.Region, AccessKey = S3Server.AccessKey, SecretKey = S3Server.SecretKey,
        });
    }

    [S3Fact] public async Task Written_png_round_trips_and_carries_the_parameters() => await Written_png_round_trips_through_an_independent_decoder_and_carries_the_parameters(await BucketAsync());
    [S3Fact] public async Task Keys_are_the_user_hash_and_job_id() => await Keys_come_from_the_user_hash_and_the_job_id_never_from_user_text(await BucketAsync());
    [S3Fact] public async Task A_rerun_leaves_exactly_one_set() => await A_rerun_replaces_the_earlier_attempts_outputs_with_exactly_one_set(await BucketAsync());
    [S3Fact] public async Task A_failed_write_leaves_no_images() => await A_failed_write_leaves_none_of_the_jobs_images_and_names_the_error_code(await BucketAsync());
    [S3Fact] public async Task Thumbnail_made_once_and_kept() => await Thumbnail_is_made_on_first_request_and_kept_beside_the_image(await BucketAsync());
    [S3Fact] public async Task Missing_outputs_open_as_null() => await Missing_images_and_thumbnails_open_as_null(await BucketAsync());
    [S3Fact] public async Task Deletes_remove_only_their_outputs() => await Deleting_a_job_or_an_image_removes_only_those_outputs(await BucketAsync());
    [S3Fact] public async Task Bytes_used_listed_once_then_followed() => await Bytes_used_are_listed_once_then_follow_this_stores_writes_and_deletes(await BucketAsync());

    [S3Fact]
    public async Task Deleting_more_objects_than_one_request_takes_removes_them_all()
    {
        var blobs = await BucketAsync();
        var prefix = OutputStore.UserFolder("many") + "/job13/";
        foreach (var batch in Enumerable.Range(0, 1005).Chunk(25))
            await Task.WhenAll(batch.Select(i => blobs.PutAsync($"{prefix}{i}.png", [1, 2], default)));

        Assert.Equal(2010, await blobs.DeletePrefixAsync(prefix, default));

        Assert.Empty(await blobs.ListAsync(prefix, default));
    }

    [S3Fact]
    public async Task A_missing_bucket_fails_the_write_as_outputs_unavailable_and_readiness_says_so()
    {
        var s3 = await S3Server.SharedAsync();
        var blobs = new S3OutputBlobs(new S3OutputsOptions
        {
            ServiceUrl = s3.ServiceUrl, Bucket = "no-such-bucket", Region = S3Server.Region, AccessKey = S3Server.AccessKey, SecretKey = S3Server.SecretKey,
        });

        var error = await Assert.ThrowsAsync<OutputStoreException>(() => blobs.PutAsync("u/j/0.png", [1], default));

        Assert.Equal("outputs_unavailable", error.Code);
        Assert.Contains("NoSuchBucket", error.Message);
        Assert.Contains("no-such-bucket", await blobs.ProblemAsync(default));
    }

    [Fact]
    public void A_full_store_or_bucket_quota_is_insufficient_storage_and_other_refusals_are_not()
    {
        static Amazon.S3.AmazonS3Exception Error(string code, System.Net.HttpStatusCode status) =>
            new("x", Amazon.Runtime.ErrorType.Sender, code, "r", status);

        Assert.True(S3OutputBlobs.IsFull(Error("XMinioStorageFull", System.Net.HttpStatusCode.InsufficientStorage)));
        Assert.True(S3OutputBlobs.IsFull(Error("XMinioAdminBucketQuotaExceeded", System.Net.HttpStatusCode.BadRequest)));
        Assert.True(S3OutputBlobs.IsFull(Error("QuotaExceeded", System.Net.HttpStatusCode.Forbidden)));
        Assert.False(S3OutputBlobs.IsFull(Error("NoSuchBucket", System.Net.HttpStatusCode.NotFound)));
        Assert.False(S3OutputBlobs.IsFull(Error("AccessDenied", System.Net.HttpStatusCode.Forbidden)));
    }
}
