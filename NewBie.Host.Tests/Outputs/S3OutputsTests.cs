using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Outputs;

/// <summary>The server with Outputs:Provider=s3 against the real S3 server: images in the bucket, served, deleted and failed as on a folder.</summary>
public sealed class S3OutputsTests
{
    private static readonly object TwoImages = new { prompt = "1girl, smile", width = 256, height = 320, steps = 2, count = 2 };

    private static async Task<(S3Server S3, string Bucket, NewBieApplication App)> AppAsync(Dictionary<string, string?>? more = null)
    {
        var s3 = await S3Server.SharedAsync();
        var bucket = await s3.CreateBucketAsync();
        var settings = s3.Settings(bucket);
        foreach (var (key, value) in more ?? []) settings[key] = value;
        return (s3, bucket, new NewBieApplication(settings));
    }

    [S3Fact]
    public async Task Images_go_to_the_bucket_and_are_served_to_their_owner_only()
    {
        var (s3, bucket, app) = await AppAsync();
        using var _ = app;
        var alice = app.ClientWithKey("alice");
        var id = (await alice.SubmitAsync(TwoImages)).Str("id");
        await alice.WaitForStatusAsync(id, "succeeded");
        var prefix = $"{OutputStore.UserFolder("alice")}/{id}/";

        var objects = await s3.ListAsync(bucket);
        Assert.Equal([prefix + "0.png", prefix + "1.png"], objects.Keys.Order(StringComparer.Ordinal));
        var served = await alice.GetByteArrayAsync($"/v1/jobs/{id}/images/1");
        using (var client = s3.Client())
        using (var stored = await client.GetObjectAsync(bucket, prefix + "1.png"))
        using (var buffer = new MemoryStream())
        {
            await stored.ResponseStream.CopyToAsync(buffer);
            Assert.Equal(buffer.ToArray(), served);
        }
        var png = PngReader.Read(served);
        Assert.Equal("1girl, smile", png.TextOf("prompt"));
        Assert.Equal(ScriptedEngine.Pattern(256, 320, long.Parse(png.TextOf("seed")!, System.Globalization.CultureInfo.InvariantCulture)), PngDecoder.Decode(served).Rgb);
        Assert.False(Directory.Exists(app.Service<DataDirectory>().OutputsPath) && Directory.EnumerateFileSystemEntries(app.Service<DataDirectory>().OutputsPath).Any());

        using var bob = await app.ClientWithKey("bob").GetAsync($"/v1/jobs/{id}/images/1");
        Assert.Equal(HttpStatusCode.NotFound, bob.StatusCode);
        using var bobThumb = await app.ClientWithKey("bob").GetAsync($"/v1/jobs/{id}/images/0?size=thumb");
        Assert.Equal(HttpStatusCode.NotFound, bobThumb.StatusCode);

        var thumbnail = PngReader.Read(await alice.GetByteArrayAsync($"/v1/jobs/{id}/images/0?size=thumb"));
        Assert.Equal(((int)Math.Round(OutputStore.ThumbnailSide * 256 / 320.0), OutputStore.ThumbnailSide), (thumbnail.Width, thumbnail.Height));
        objects = await s3.ListAsync(bucket);
        Assert.Contains(prefix + "0.thumb.png", objects.Keys);
        var usage = await alice.GetFromJsonAsync<JsonElement>("/v1/me/usage");
        Assert.Equal(objects.Values.Sum(), usage.GetProperty("storage_bytes").GetInt64());
    }

    [S3Fact]
    public async Task Openai_b64_json_and_url_formats_serve_the_bucket_images()
    {
        var (s3, bucket, app) = await AppAsync();
        using var _ = app;
        var client = app.ClientFor();

        using var b64 = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256", response_format = "b64_json" });
        using var url = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256", response_format = "url" });

        Assert.Equal(HttpStatusCode.OK, b64.StatusCode);
        Assert.Equal(HttpStatusCode.OK, url.StatusCode);
        var inline = Convert.FromBase64String((await b64.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data")[0].Str("b64_json"));
        var linked = await client.GetByteArrayAsync((await url.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data")[0].Str("url"));
        var objects = await s3.ListAsync(bucket);
        Assert.Equal(2, objects.Count);
        Assert.Contains(inline.LongLength, objects.Values);
        Assert.Contains(linked.LongLength, objects.Values);
        Assert.Equal((256, 256), (PngDecoder.Decode(inline).Width, PngDecoder.Decode(linked).Width));
    }

    [S3Fact]
    public async Task Studio_zip_reads_the_bucket_and_deleting_from_the_history_removes_the_objects()
    {
        var (s3, bucket, app) = await AppAsync();
        using var _ = app;
        var alice = app.ClientWithKey("alice");
        var id = (await alice.SubmitAsync(TwoImages)).Str("id");
        await alice.WaitForStatusAsync(id, "succeeded");
        var prefix = $"{OutputStore.UserFolder("alice")}/{id}/";

        var stored = await s3.ListAsync(bucket);
        using (var zip = new System.IO.Compression.ZipArchive(new MemoryStream(await alice.GetByteArrayAsync($"/v1/me/images.zip?image={id}"))))
        {
            Assert.Equal([$"newbie-{id}-0.png", $"newbie-{id}-1.png"], zip.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
            Assert.All(zip.Entries, e => Assert.Equal(stored[prefix + e.FullName[^5..]], e.Length));
        }

        using (var one = await alice.DeleteAsync($"/v1/me/history/{id}/images/0")) Assert.Equal(HttpStatusCode.NoContent, one.StatusCode);
        Assert.Equal([prefix + "1.png"], (await s3.ListAsync(bucket)).Keys);
        using (var all = await alice.DeleteAsync($"/v1/me/history/{id}")) Assert.Equal(HttpStatusCode.NoContent, all.StatusCode);
        Assert.Empty(await s3.ListAsync(bucket));
    }

    [S3Fact]
    public async Task Retention_deletes_the_jobs_objects_from_the_bucket()
    {
        var (s3, bucket, app) = await AppAsync(new() { ["Jobs:RetentionDays"] = "1" });
        using var _ = app;
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(TwoImages)).Str("id");
        await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(2, (await s3.ListAsync(bucket)).Count);

        app.Time.Advance(TimeSpan.FromHours(23));
        Assert.Equal(0, await app.Service<JobMaintenance>().DeleteOldResultsAsync());
        Assert.Equal(2, (await s3.ListAsync(bucket)).Count);
        app.Time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(1, await app.Service<JobMaintenance>().DeleteOldResultsAsync());

        Assert.Empty(await s3.ListAsync(bucket));
        using var gone = await client.GetAsync($"/v1/jobs/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [S3Fact]
    public async Task A_bucket_gone_fails_the_job_as_outputs_unavailable_gives_the_quota_back_and_shows_in_readyz()
    {
        var (s3, bucket, app) = await AppAsync(new() { ["Accounts:Defaults:ImagesPerDay"] = "2", ["Accounts:Defaults:MaxStorageBytes"] = "0" });
        using var _ = app;
        var alice = app.ClientWithKey("alice");
        using (var client = s3.Client()) await client.DeleteBucketAsync(bucket);

        var id = (await alice.SubmitAsync(TwoImages)).Str("id");
        var job = await alice.WaitForStatusAsync(id, "failed");

        Assert.Equal("outputs_unavailable", job.GetProperty("error").Str("code"));
        Assert.Contains(bucket, job.GetProperty("error").Str("message"));
        Assert.Equal(0, job.GetProperty("images").GetArrayLength());
        using (var ready = await app.AdminClient().GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            var outputs = (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("checks").GetProperty("outputs");
            Assert.Equal("failed", outputs.Str("status"));
            Assert.Contains("404", outputs.Str("description"));
        }

        using (var client = s3.Client()) await client.PutBucketAsync(bucket);
        Assert.Equal(0, (await alice.GetFromJsonAsync<JsonElement>("/v1/me/usage")).GetProperty("images_today").GetInt32());
        var again = (await alice.SubmitAsync(TwoImages)).Str("id");
        await alice.WaitForStatusAsync(again, "succeeded");
        Assert.Equal(2, (await s3.ListAsync(bucket)).Count);
    }

    [S3Fact]
    public async Task A_server_that_is_down_fails_the_job_as_outputs_unavailable_and_readyz_says_unreachable()
    {
        using var closed = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        // No storage cap, so that the submit does not need the store: the job meets the dead server at its write.
        var (_, _, app) = await AppAsync(new() { ["Outputs:S3:ServiceUrl"] = $"http://127.0.0.1:{port}", ["Accounts:Defaults:MaxStorageBytes"] = "0" });
        using var __ = app;
        var client = app.ClientFor();

        var job = await client.WaitForStatusAsync((await client.SubmitAsync(TwoImages)).Str("id"), "failed", TimeSpan.FromSeconds(60));

        Assert.Equal("outputs_unavailable", job.GetProperty("error").Str("code"));
        using var ready = await app.AdminClient().GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("unreachable", (await ready.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("checks").GetProperty("outputs").Str("description"));
    }

    [S3Fact]
    public async Task A_submit_that_must_count_the_storage_cap_while_the_bucket_is_gone_is_503_outputs_unavailable_and_stores_nothing()
    {
        var (s3, bucket, app) = await AppAsync();
        using var _ = app;
        using (var client = s3.Client()) await client.DeleteBucketAsync(bucket);

        using var response = await app.ClientFor().PostRawAsync("/v1/jobs", TwoImages);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("outputs_unavailable", (await response.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromSeconds(60), response.Headers.RetryAfter?.Delta);
        Assert.Empty(app.Service<JobStore>().List(null, null, null, 10));
    }

    [Fact]
    public void S3_without_its_settings_stops_the_start_naming_each_one_missing()
    {
        using var app = new NewBieApplication(new() { ["Outputs:Provider"] = "s3", ["Outputs:S3:ServiceUrl"] = "not a url" });

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        foreach (var setting in new[] { "Outputs:S3:ServiceUrl", "Outputs:S3:Bucket", "Outputs:S3:AccessKey", "Outputs:S3:SecretKey" })
            Assert.Contains(setting, error.Message);
    }

    [Fact]
    public void An_unknown_provider_stops_the_start()
    {
        using var app = new NewBieApplication(new() { ["Outputs:Provider"] = "ftp" });

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        Assert.Contains("Outputs:Provider", error.Message);
    }
}
