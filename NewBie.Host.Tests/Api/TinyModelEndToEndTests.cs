using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Api;

/// <summary>The whole server on the real built-in tiny model (NewBiePipeline on the CPU), over HTTP.</summary>
public sealed class TinyModelEndToEndTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Models:Model"] = "tiny" }, scriptedEngine: false);

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Submit_stream_poll_and_fetch_a_decodable_png_from_the_tiny_model()
    {
        var client = _app.ClientFor();
        await WaitReadyAsync(_app.AdminClient());
        var submitted = await client.SubmitAsync(new { prompt = "<character_1><n>miku</n></character_1>", width = 256, height = 320, steps = 2, seed = 5 });
        var id = submitted.Str("id");

        var events = new List<(string Name, JsonElement Data)>();
        using (var response = await client.GetAsync(submitted.Str("events_url"), HttpCompletionOption.ResponseHeadersRead))
        using (var reader = new StreamReader(await response.Content.ReadAsStreamAsync()))
        {
            string? name = null;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add((name!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
            }
        }
        Assert.Equal("done", events[^1].Name);
        Assert.Equal("succeeded", events[^1].Data.Str("status"));

        var job = await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(5, job.GetProperty("params").GetProperty("seed").GetInt64());
        var image = Assert.Single(job.GetProperty("images").EnumerateArray());
        using var png = await client.GetAsync(image.Str("url"));
        Assert.Equal(HttpStatusCode.OK, png.StatusCode);
        var bytes = await png.Content.ReadAsByteArrayAsync();
        var (w, h, rgb) = PngDecoder.Decode(bytes);
        Assert.Equal((256, 320), (w, h));
        Assert.True(rgb.Distinct().Count() > 16, "the tiny model's image has content");
        var text = PngReader.Read(bytes);
        Assert.Equal("newbie-tiny", text.TextOf("model"));
        Assert.Equal("5", text.TextOf("seed"));
    }

    [Fact]
    public async Task Readyz_labels_the_tiny_model_loudly()
    {
        var client = _app.AdminClient();
        var body = await WaitReadyAsync(client);
        Assert.Equal("newbie-tiny", body.Str("model"));
        Assert.True(body.GetProperty("tiny").GetBoolean());
    }

    /// <summary>/readyz, its answer held until the tiny model has loaded (60 s at most): 200.</summary>
    private static async Task<JsonElement> WaitReadyAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/readyz?wait=60");
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"not ready: {body}");
        return body;
    }
}
