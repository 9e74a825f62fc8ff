using System.IO.Compression;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Accounts;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Host.Studio;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Studio;

/// <summary>The routes behind the studio: thumbnails, zip downloads, deleting history, usage and the storage cap.</summary>
public sealed class StudioApiTests
{
    private static readonly object Small = new { prompt = "1girl, 笑顔", width = 512, height = 256, steps = 2 };

    private static async Task<string> FinishedJobAsync(HttpClient client, object? body = null)
    {
        var id = (await client.SubmitAsync(body ?? Small)).Str("id");
        await client.WaitForStatusAsync(id, "succeeded");
        return id;
    }

    [Fact]
    public async Task Thumbnail_is_a_small_png_made_once_and_cached_and_only_for_the_owner()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var job = await FinishedJobAsync(alice);

        var first = await alice.GetByteArrayAsync($"/v1/jobs/{job}/images/0?size=thumb");
        var thumbnail = PngReader.Read(first);
        Assert.Equal((OutputStore.ThumbnailSide, OutputStore.ThumbnailSide / 2), (thumbnail.Width, thumbnail.Height));
        var cached = Directory.GetFiles(app.Service<DataDirectory>().OutputsPath, "0.thumb.png", SearchOption.AllDirectories).Single();
        var written = File.GetLastWriteTimeUtc(cached);
        var second = await alice.GetByteArrayAsync($"/v1/jobs/{job}/images/0?size=thumb");
        Assert.Equal(first, second);
        Assert.Equal(written, File.GetLastWriteTimeUtc(cached));

        using var bob = await app.ClientWithKey("bob").GetAsync($"/v1/jobs/{job}/images/0?size=thumb");
        Assert.Equal(HttpStatusCode.NotFound, bob.StatusCode);
        using var bad = await alice.GetAsync($"/v1/jobs/{job}/images/0?size=huge");
        Assert.Equal("invalid_parameter", (await bad.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Download_keeps_the_png_and_its_metadata_and_names_the_file()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var job = await FinishedJobAsync(alice);

        using var response = await alice.GetAsync($"/v1/jobs/{job}/images/0?download=true");

        Assert.Equal($"newbie-{job}-0.png", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        var png = PngReader.Read(await response.Content.ReadAsByteArrayAsync());
        Assert.Contains("笑顔", png.TextOf("parameters"));
    }

    [Fact]
    public async Task Zip_streams_the_named_images_of_the_owner_and_refuses_anyone_elses()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var one = await FinishedJobAsync(alice);
        var two = await FinishedJobAsync(alice, new { prompt = "two", width = 256, height = 256, steps = 2, count = 2 });

        using var response = await alice.GetAsync($"/v1/me/images.zip?image={one}/0&image={two}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/zip", response.Content.Headers.ContentType?.MediaType);
        using var zip = new ZipArchive(await response.Content.ReadAsStreamAsync(), ZipArchiveMode.Read);
        Assert.Equal([$"newbie-{one}-0.png", $"newbie-{two}-0.png", $"newbie-{two}-1.png"], zip.Entries.Select(e => e.FullName));
        var original = await alice.GetByteArrayAsync($"/v1/jobs/{two}/images/1");
        using var entry = new MemoryStream();
        await using (var stream = await zip.Entries[2].OpenAsync()) await stream.CopyToAsync(entry);
        Assert.Equal(original, entry.ToArray());

        var bob = app.ClientWithKey("bob");
        using var refused = await bob.GetAsync($"/v1/me/images.zip?image={one}");
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        using var missing = await alice.GetAsync($"/v1/me/images.zip?image={one}/7");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using var none = await alice.GetAsync("/v1/me/images.zip");
        Assert.Equal("invalid_parameter", (await none.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Deleting_a_job_removes_its_record_and_files_but_not_someone_elses_nor_an_unfinished_one()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var job = await FinishedJobAsync(alice);
        var folder = Path.Combine(app.Service<DataDirectory>().OutputsPath, OutputStore.UserFolder("alice"), job);
        Assert.True(Directory.Exists(folder));

        using var bob = await app.ClientWithKey("bob").DeleteAsync($"/v1/me/history/{job}");
        Assert.Equal(HttpStatusCode.NotFound, bob.StatusCode);
        app.Engine.Hold();
        var running = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        using var active = await alice.DeleteAsync($"/v1/me/history/{running}");
        Assert.Equal("job_not_finished", (await active.ProblemAsync()).Str("code"));

        using var deleted = await alice.DeleteAsync($"/v1/me/history/{job}");

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        Assert.False(Directory.Exists(folder));
        using var gone = await alice.GetAsync($"/v1/jobs/{job}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        app.Engine.Release();
    }

    [Fact]
    public async Task Deleting_one_image_keeps_the_others_of_its_job()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var job = await FinishedJobAsync(alice, new { prompt = "pair", width = 256, height = 256, steps = 2, count = 2 });

        using var deleted = await alice.DeleteAsync($"/v1/me/history/{job}/images/0");

        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        var images = (await alice.GetJobAsync(job)).GetProperty("images").EnumerateArray().Select(i => i.GetProperty("index").GetInt32());
        Assert.Equal([1], images);
        using var image = await alice.GetAsync($"/v1/jobs/{job}/images/0");
        Assert.Equal(HttpStatusCode.NotFound, image.StatusCode);
    }

    [Fact]
    public async Task Delete_all_history_removes_finished_jobs_keeps_unfinished_ones_and_usage_shows_it()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        await FinishedJobAsync(alice);
        await FinishedJobAsync(alice);
        var bobJob = await FinishedJobAsync(app.ClientWithKey("bob"));
        app.Engine.Hold();
        var running = (await alice.SubmitAsync(Small)).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        var before = await alice.GetFromJsonAsync<JsonElement>("/v1/me/usage");
        Assert.Equal(3, before.GetProperty("images_today").GetInt32());
        Assert.True(before.GetProperty("storage_bytes").GetInt64() > 0);
        Assert.Equal(10L << 30, before.GetProperty("max_storage_bytes").GetInt64());

        using var unconfirmed = await alice.DeleteAsync("/v1/me/history/");
        Assert.Equal(HttpStatusCode.BadRequest, unconfirmed.StatusCode);
        Assert.Equal(3, (await alice.GetFromJsonAsync<JsonElement>("/v1/me/usage")).GetProperty("jobs").GetInt32());

        using var response = await alice.DeleteAsync("/v1/me/history?confirm=all");

        Assert.Equal(2, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("deleted_jobs").GetInt32());
        var after = await alice.GetFromJsonAsync<JsonElement>("/v1/me/usage");
        Assert.Equal(0, after.GetProperty("storage_bytes").GetInt64());
        Assert.Equal(1, after.GetProperty("jobs").GetInt32());
        Assert.Equal("running", (await alice.GetJobAsync(running)).Str("status"));
        Assert.Equal("succeeded", (await app.ClientWithKey("bob").GetJobAsync(bobJob)).Str("status"));
        app.Engine.Release();
    }

    [Fact]
    public async Task Run_again_keeps_every_sampler_setting_of_the_job_and_its_seed()
    {
        using var app = new NewBieApplication();
        var alice = app.ClientWithKey("alice");
        var id = await FinishedJobAsync(alice, new { prompt = "again", width = 256, height = 256, preset = "demo", steps = 3, shift = 3.0, seed = 42 });
        var job = app.Service<JobStore>().Find(id)!;
        var user = new CurrentUser(job.UserId, false, null);

        var (again, problem) = await app.Service<StudioService>().RunAgainAsync(user, job, newSeed: false);
        var (variation, _) = await app.Service<StudioService>().RunAgainAsync(user, job, newSeed: true);

        Assert.Null(problem);
        Assert.NotEqual(id, again!.Id);
        var (p, q) = (job.Params, again.Params);
        Assert.Equal(("demo", SamplerKind.Midpoint, 3, 0.25, 0.0, 3.0, 42L), (p.Preset, p.Sampler, p.Steps, p.CfgTrunc, p.RenormCfg, p.Shift, p.Seed));
        Assert.Equal((p.Preset, p.Sampler, p.Steps, p.Guidance, p.CfgTrunc, p.RenormCfg, p.Shift, p.Seed, p.Width, p.Height, p.Prompt),
            (q.Preset, q.Sampler, q.Steps, q.Guidance, q.CfgTrunc, q.RenormCfg, q.Shift, q.Seed, q.Width, q.Height, q.Prompt));
        Assert.Equal((p.CfgTrunc, p.Shift), (variation!.Params.CfgTrunc, variation.Params.Shift));
        Assert.NotEqual(p.Seed, variation.Params.Seed);
    }

    [Fact]
    public async Task A_submit_that_could_pass_the_storage_cap_is_refused_on_every_submit_route()
    {
        // One 256×256 image at its largest (3 bytes a pixel and the metadata allowance) fits; a second one does not
        // once the first one's PNG is on disk.
        var largest = 256 * 256 * 3 + 64 * 1024;
        using var app = new NewBieApplication(new() { ["Accounts:Defaults:MaxStorageBytes"] = (largest + 100).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var alice = app.ClientWithKey("alice");
        var small = new { prompt = "x", width = 256, height = 256, steps = 2 };
        var first = await FinishedJobAsync(alice, small);

        using var jobs = await alice.PostRawAsync("/v1/jobs", small);
        using var seed = await alice.PostRawAsync("/generate", small);
        using var openAi = await alice.PostRawAsync("/v1/images/generations", new { prompt = "x", size = "256x256", steps = 2 });

        Assert.Equal(HttpStatusCode.Forbidden, jobs.StatusCode);
        var problem = await jobs.ProblemAsync();
        Assert.Equal("storage_cap_exceeded", problem.Str("code"));
        Assert.Contains("storage cap", problem.Str("detail"));
        Assert.Equal(HttpStatusCode.Forbidden, seed.StatusCode);
        Assert.Equal("storage_cap_exceeded", (await seed.ProblemAsync()).Str("code"));
        Assert.Equal(HttpStatusCode.Forbidden, openAi.StatusCode);
        Assert.Contains("storage_cap_exceeded", await openAi.Content.ReadAsStringAsync());
        Assert.Equal(1, app.Engine.Runs);

        // Deleting the image gives the space back.
        using var deleted = await alice.DeleteAsync($"/v1/me/history/{first}");
        using var again = await alice.PostRawAsync("/v1/jobs", small);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }
}
