using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace NewBie.Host.Tests.Api;

/// <summary>Refused submits change nothing, and accepted ones are looked at by no other test: one server for the class.</summary>
public sealed class ValidationTests(ValidationTests.App fixture) : IClassFixture<ValidationTests.App>
{
    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new(new()
        {
            ["Limits:MaxBodyBytes"] = "4096",
            ["Limits:MaxXmlDepth"] = "4",
            ["Limits:MaxPixels"] = "1048576",
        });

        public App() => Server.Engine.GemmaWindow = 8;

        public void Dispose() => Server.Dispose();
    }

    private readonly NewBieApplication _app = fixture.Server;

    public static TheoryData<string, string, string?> InvalidRequests => new()
    {
        { """{"width": 256}""", "invalid_prompt", "prompt" },
        { """{"prompt": "   "}""", "invalid_prompt", "prompt" },
        { """{"prompt": "x", "width": 250}""", "invalid_parameter", "width" },
        { """{"prompt": "x", "height": 4096}""", "invalid_parameter", "height" },
        { """{"prompt": "x", "width": 1024, "height": 1040}""", "invalid_parameter", "width" },
        { """{"prompt": "x", "steps": 0}""", "invalid_parameter", "steps" },
        { """{"prompt": "x", "steps": 101}""", "invalid_parameter", "steps" },
        { """{"prompt": "x", "guidance": -1}""", "invalid_parameter", "guidance" },
        { """{"prompt": "x", "count": 5}""", "invalid_parameter", "count" },
        { """{"prompt": "x", "sampler": "ddim"}""", "invalid_parameter", "sampler" },
        { """{"prompt": "x", "seed": -1}""", "invalid_parameter", "seed" },
        { """{"prompt": "x", "cfg_trunc": 1.5}""", "invalid_parameter", "cfg_trunc" },
        { """{"prompt": "x", "cfg_trunc": -0.1}""", "invalid_parameter", "cfg_trunc" },
        { """{"prompt": "x", "renorm": -1}""", "invalid_parameter", "renorm" },
        { """{"prompt": "x", "renorm": 11}""", "invalid_parameter", "renorm" },
        { """{"prompt": "x", "shift": 0}""", "invalid_parameter", "shift" },
        { """{"prompt": "x", "shift": 21}""", "invalid_parameter", "shift" },
        { """{"prompt": "x", "preset": "fast"}""", "invalid_parameter", "preset" },
        { """{"prompt": "x", "preset": "Demo"}""", "invalid_parameter", "preset" },
        { """{"prompt": "x", "priority": "urgent"}""", "invalid_parameter", "priority" },
        { """{"prompt": "x", "negative_prompt": "<a><b></a>"}""", "invalid_parameter", "negative_prompt" },
        { """{"prompt": "x", "width": "wide"}""", "invalid_json", null },
        { """{"prompt": "x", "width": "256", "height": 256}""", "invalid_json", null },
        { """{"prompt": "x", "seed": "7"}""", "invalid_json", null },
        { """{"prompt": "x",""", "invalid_json", null },
        { """[1, 2]""", "invalid_json", null },
        // What a PNG text chunk cannot carry is refused at submit, not found at the end of the run.
        { """{"prompt": "1girl\u0000smile"}""", "invalid_prompt", "prompt" },
        { """{"prompt": "1girl", "negative_prompt": "bad\u0000"}""", "invalid_parameter", "negative_prompt" },
        { """{"prompt": "1girl", "system_prompt": "\u0000"}""", "invalid_parameter", "system_prompt" },
        { """{"prompt": "1girl\u0007"}""", "invalid_prompt", "prompt" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task Invalid_request_is_400_problem_with_stable_code_and_field(string body, string code, string? field)
    {
        using var response = await Post(body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ProblemAsync();
        Assert.Equal(code, problem.Str("code"));
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        if (field is not null) Assert.Equal(field, problem.Str("field"));
    }

    [Fact]
    public async Task Malformed_xml_prompt_reports_parser_line_and_column()
    {
        using var response = await Post(JsonSerializer.Serialize(new { prompt = "<character_1>\n  <n>miku</name>\n</character_1>" }));

        var problem = await response.ProblemAsync();
        Assert.Equal("invalid_prompt", problem.Str("code"));
        Assert.Contains("line 2, column", problem.Str("detail"));
    }

    [Fact]
    public async Task Malformed_xml_on_the_first_line_reports_the_column_in_the_prompt_as_sent()
    {
        using var response = await Post(JsonSerializer.Serialize(new { prompt = "<a>x</b>" }));

        Assert.Contains("line 1, column 7", (await response.ProblemAsync()).Str("detail"));
    }

    [Theory]
    [InlineData("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><lolz>&lol2;</lolz>")]
    [InlineData("<a>x</a><!DOCTYPE b [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><b>&e;</b>")]
    [InlineData("<a>&undefined;</a>")]
    public async Task Dtd_and_entity_prompts_are_refused(string prompt)
    {
        using var response = await Post(JsonSerializer.Serialize(new { prompt }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_prompt", (await response.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Xml_nested_deeper_than_the_limit_is_refused()
    {
        using var ok = await Post(JsonSerializer.Serialize(new { prompt = "<a><b><c><d>x</d></c></b></a>", width = 256, height = 256, steps = 1 }));
        using var deep = await Post(JsonSerializer.Serialize(new { prompt = "<a><b><c><d><e>x</e></d></c></b></a>" }));

        Assert.Equal(HttpStatusCode.Accepted, ok.StatusCode);
        Assert.Contains("deeper than 4", (await deep.ProblemAsync()).Str("detail"));
    }

    [Fact]
    public async Task Xml_fragment_with_several_top_level_elements_is_accepted()
    {
        using var response = await Post(JsonSerializer.Serialize(new { prompt = "  <character_1><n>a</n></character_1>\n<general_tags><style>anime</style></general_tags>", width = 256, height = 256, steps = 1 }));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    [Fact]
    public async Task Body_over_the_limit_is_413_payload_too_large()
    {
        using var response = await Post(JsonSerializer.Serialize(new { prompt = new string('x', 5000) }));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("payload_too_large", (await response.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Truncated_prompt_is_accepted_and_the_dropped_tokens_reported()
    {
        var client = _app.ClientFor();
        await RejectTruncatedPromptTests.WaitReady(client);
        var id = (await client.SubmitAsync(new { prompt = "one two three four five six seven eight nine ten", width = 256, height = 256, steps = 1 })).Str("id");

        var tokens = (await client.GetJobAsync(id)).GetProperty("prompt_tokens");

        Assert.Equal(10, tokens.GetProperty("gemma_tokens").GetInt32());
        Assert.Equal(2, tokens.GetProperty("gemma_tokens_dropped").GetInt32());
    }

    private Task<HttpResponseMessage> Post(string json) =>
        _app.ClientFor().PostAsync("/v1/jobs", new StringContent(json, Encoding.UTF8, "application/json"));
}

public sealed class RejectTruncatedPromptTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Jobs:RejectTruncatedPrompts"] = "true" });

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task With_the_setting_a_prompt_longer_than_the_gemma_window_is_400()
    {
        _app.Engine.GemmaWindow = 3;
        var client = _app.ClientFor();
        await WaitReady(client);

        using var response = await client.PostAsJsonAsync("/v1/jobs", new { prompt = "one two three four" });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ProblemAsync();
        Assert.Equal("invalid_prompt", problem.Str("code"));
        Assert.Contains("1 would be cut", problem.Str("detail"));
    }

    /// <summary>/readyz, its answer held until the engine has loaded (10 s at most): 200.</summary>
    internal static async Task WaitReady(HttpClient client)
    {
        using var ready = await client.GetAsync("/readyz?wait=10");
        Assert.True(ready.StatusCode == HttpStatusCode.OK, $"not ready: {await ready.Content.ReadAsStringAsync()}");
    }
}
