using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace NewBie.Host.Tests.Integrations;

/// <summary>
/// Each test changes only its own user's jobs and waits for them to end (refused requests change nothing): one server
/// for the class, a user per test. The one that holds the engine has a server of its own (<see cref="OpenAiCancelTests"/>).
/// </summary>
public sealed class OpenAiApiTests(OpenAiApiTests.App fixture) : IClassFixture<OpenAiApiTests.App>
{
    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new();

        public void Dispose() => Server.Dispose();
    }

    private readonly NewBieApplication _app = fixture.Server;

    private async Task<long> SeedOfOnlyJobAsync(HttpClient client)
    {
        var page = await client.GetFromJsonAsync<JsonElement>("/v1/jobs");
        return page.GetProperty("items").EnumerateArray().Single().GetProperty("params").GetProperty("seed").GetInt64();
    }

    [Fact]
    public async Task Generations_answers_when_done_with_each_image_as_b64_png()
    {
        var client = _app.ClientFor("b64");

        using var response = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl, smile", n = 2, size = "256x320", response_format = "b64_json", model = "newbie" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(_app.Time.GetUtcNow().ToUnixTimeSeconds(), body.GetProperty("created").GetInt64());
        var data = body.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(2, data.Count);
        var seed = await SeedOfOnlyJobAsync(client);
        for (var i = 0; i < 2; i++)
        {
            Assert.False(data[i].TryGetProperty("url", out _));
            var (w, h, rgb) = PngDecoder.Decode(Convert.FromBase64String(data[i].Str("b64_json")));
            Assert.Equal((256, 320), (w, h));
            Assert.Equal(ScriptedEngine.Pattern(256, 320, seed + i), rgb);
        }
    }

    [Fact]
    public async Task Newbie_extensions_steps_seed_and_negative_prompt_reach_the_job()
    {
        var client = _app.ClientFor("extensions");

        using var response = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256", steps = 3, seed = 42, negative_prompt = "blurry" });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var job = (await client.GetFromJsonAsync<JsonElement>("/v1/jobs")).GetProperty("items")[0].GetProperty("params");
        Assert.Equal((3, 42L, "blurry"), (job.GetProperty("steps").GetInt32(), job.GetProperty("seed").GetInt64(), job.Str("negative_prompt")));
    }

    [Fact]
    public async Task Newbie_sampler_extensions_and_presets_reach_the_job()
    {
        var client = _app.ClientFor("presets");

        using var response = await client.PostAsJsonAsync("/v1/images/generations",
            new { prompt = "1girl", size = "256x256", preset = "demo", steps = 2, shift = 3.0, renorm = 1.5 });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var job = (await client.GetFromJsonAsync<JsonElement>("/v1/jobs")).GetProperty("items")[0].GetProperty("params");
        Assert.Equal(("demo", "midpoint", 2, 0.25, 1.5, 3.0), (job.Str("preset"), job.Str("sampler"), job.GetProperty("steps").GetInt32(),
            job.GetProperty("cfg_trunc").GetDouble(), job.GetProperty("renorm").GetDouble(), job.GetProperty("shift").GetDouble()));
    }

    [Fact]
    public async Task Url_format_without_a_public_base_url_gives_relative_urls_whatever_the_host_header()
    {
        var client = _app.ClientFor("relative-urls");
        client.DefaultRequestHeaders.Host = "evil.example";

        using var response = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256", response_format = "url" });

        var url = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data")[0].Str("url");
        Assert.StartsWith("/v1/jobs/", url);
        using var png = await client.GetAsync(url);
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Url_format_gives_absolute_urls_under_the_configured_public_base_url()
    {
        using var app = new NewBieApplication(new() { ["Server:PublicBaseUrl"] = "https://newbie.example/base/" });
        var client = app.ClientFor();
        client.DefaultRequestHeaders.Host = "evil.example";

        using var response = await client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256", response_format = "url" });

        var url = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("data")[0].Str("url");
        Assert.StartsWith("https://newbie.example/base/v1/jobs/", url);
        using var png = await client.GetAsync(url["https://newbie.example/base".Length..]);
        Assert.Equal("image/png", png.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("{\"prompt\": \"x\", \"size\": \"big\"}", "size")]
    [InlineData("{\"prompt\": \"x\", \"size\": \"1000x1000\"}", "size")]
    [InlineData("{\"prompt\": \"x\", \"n\": 99}", "n")]
    [InlineData("{\"prompt\": \"x\", \"response_format\": \"png\"}", "response_format")]
    [InlineData("{\"n\": 1}", "prompt")]
    [InlineData("{\"prompt\": \"1girl\\u0000\"}", "prompt")]
    [InlineData("{\"prompt\": \"1girl\", \"negative_prompt\": \"a\\u0000b\"}", "negative_prompt")]
    [InlineData("{\"prompt\": \"x\", \"cfg_trunc\": 2}", "cfg_trunc")]
    [InlineData("{\"prompt\": \"x\", \"preset\": \"fast\"}", "preset")]
    public async Task Invalid_request_answers_400_in_openai_error_shape(string json, string param)
    {
        using var response = await _app.ClientFor().PostAsync("/v1/images/generations", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("invalid_request_error", error.Str("type"));
        Assert.Equal(param, error.Str("param"));
        Assert.False(string.IsNullOrEmpty(error.Str("message")));
    }
}

/// <summary>Holds the engine: a server of its own.</summary>
public sealed class OpenAiCancelTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Client_that_disconnects_before_the_result_cancels_its_job()
    {
        var client = _app.ClientFor();
        _app.Engine.Hold();
        using var abort = new CancellationTokenSource();

        var call = client.PostAsJsonAsync("/v1/images/generations", new { prompt = "1girl", size = "256x256" }, abort.Token);
        // The job the call created, once it runs: looked for again at each change of the job store.
        var store = _app.Service<NewBie.Host.Jobs.JobStore>();
        var id = "";
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
            while (id.Length == 0)
            {
                var changed = store.NextChange;
                var page = await client.GetFromJsonAsync<JsonElement>("/v1/jobs?status=running");
                id = page.GetProperty("items").EnumerateArray().Select(j => j.Str("id")).FirstOrDefault() ?? "";
                if (id.Length == 0) await changed.WaitAsync(deadline.Token);
            }
        await abort.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);

        var job = await client.WaitForStatusAsync(id, "canceled");
        Assert.Empty(job.GetProperty("images").EnumerateArray());
    }
}

/// <summary>
/// The official openai npm SDK against the server on a real Kestrel port (node cannot reach the in-memory test server),
/// generating with the real built-in tiny model.
/// </summary>
public sealed class OpenAiSdkTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Models:Model"] = "tiny" }, scriptedEngine: false);

    public void Dispose() => _app.Dispose();

    [NodeFact]
    public async Task Openai_sdk_images_generate_gets_a_decodable_png()
    {
        _app.UseKestrel(0);
        _app.StartServer();
        var baseUrl = _app.ClientOptions.BaseAddress.ToString().TrimEnd('/');
        var output = Path.Combine(_app.DataDir, "sdk.png");
        // The SDK's API key is a NewBie API key: the caller is that key's user, as on every route.
        var key = _app.KeyFor("sdk-user");
        const string script = """
            const OpenAI = require('openai').default;
            const fs = require('fs');
            (async () => {
              const client = new OpenAI({ apiKey: process.env.KEY, baseURL: process.env.BASE_URL + '/v1' });
              const result = await client.images.generate({ prompt: '1girl, smile', n: 1, size: '256x256', response_format: 'b64_json', steps: 2, seed: 3 });
              fs.writeFileSync(process.env.OUT, Buffer.from(result.data[0].b64_json, 'base64'));
              console.log('created', result.created);
            })().catch(e => { console.error(e); process.exit(1); });
            """;

        var (exit, log) = await NodeScripts.RunAsync(script, new Dictionary<string, string> { ["BASE_URL"] = baseUrl, ["OUT"] = output, ["KEY"] = key });

        Assert.True(exit == 0, $"{baseUrl}: {log}");
        var (w, h, rgb) = PngDecoder.Decode(File.ReadAllBytes(output));
        Assert.Equal((256, 256), (w, h));
        Assert.True(rgb.Distinct().Count() > 16, "the tiny model's image should not be flat");
        var job = (await _app.ClientWithBearer(key).GetFromJsonAsync<JsonElement>("/v1/jobs")).GetProperty("items")[0];
        Assert.Equal((2, 3L), (job.GetProperty("params").GetProperty("steps").GetInt32(), job.GetProperty("params").GetProperty("seed").GetInt64()));
    }
}
