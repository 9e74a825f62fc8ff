using System.Net.Http.Headers;
using System.Text;

namespace NewBie.LoadBench;

/// <summary>One malformed request: a name for the report and how to build it against a server with a user's key.</summary>
internal sealed record MalformedCase(string Name, Func<string, string, HttpRequestMessage> Build);

/// <summary>
/// Requests every one of which is wrong and must be answered 4xx without storing anything: bad JSON, XML bombs and
/// external entities, oversized bodies, wrong types, out-of-range sizes, broken unicode, bad ids, methods and headers.
/// </summary>
internal static class MalformedCases
{
    private const string Ok = "<character_1><n>ok</n></character_1>";

    private static readonly string[] JobRoutes = ["/v1/jobs", "/generate"];

    public static IEnumerable<MalformedCase> All(string existingJobId)
    {
        foreach (var route in JobRoutes)
        {
            foreach (var (name, body) in BadJson().Concat(XmlAttacks().Select(x => (x.Name, Json(new { prompt = x.Prompt, width = 256, height = 256, steps = 2 }))))
                         .Concat(WrongTypes()).Concat(HugeSizes()).Concat(BrokenUnicode()))
                yield return Post(route, name, body);
            foreach (var (name, prompt) in XmlAttacks())
                yield return Post(route, $"negative_prompt {name}", Json(new { prompt = Ok, negative_prompt = prompt, width = 256, height = 256, steps = 2 }));
            yield return Post(route, "10 MB prompt", Json(new { prompt = new string('a', 10 * 1024 * 1024), width = 256, height = 256 }));
            yield return Post(route, "10 MB prompt, chunked", Json(new { prompt = new string('a', 10 * 1024 * 1024) }), chunked: true);
            yield return Post(route, "prompt above MaxPromptChars", Json(new { prompt = new string('b', 20_001), width = 256, height = 256 }));
            yield return new MalformedCase($"{route} Idempotency-Key of 1000 characters", (url, key) =>
            {
                var request = Request(HttpMethod.Post, url + route, key, Json(new { prompt = Ok, width = 256, height = 256, steps = 2 }));
                request.Headers.Add("Idempotency-Key", new string('k', 1000));
                return request;
            });
            yield return new MalformedCase($"{route} garbage API key", (url, _) => Request(HttpMethod.Post, url + route, "nb_000000000000_garbage", Json(new { prompt = Ok })));
            foreach (var header in new[] { "Basic Zm9vOmJhcg==", "Bearer", "Bearer nb_", "nb_x_y" })
                yield return new MalformedCase($"{route} Authorization '{header}'", (url, _) =>
                {
                    var request = new HttpRequestMessage(HttpMethod.Post, url + route) { Content = Content(Json(new { prompt = Ok })) };
                    request.Headers.TryAddWithoutValidation("Authorization", header);
                    return request;
                });
        }
        foreach (var (name, body) in BadJson().Concat(OpenAiWrong()))
            yield return Post("/v1/images/generations", name, body);
        yield return Post("/v1/images/generations", "10 MB prompt", Json(new { prompt = new string('a', 10 * 1024 * 1024) }));
        foreach (var (name, prompt) in XmlAttacks())
            yield return Post("/v1/images/generations", name, Json(new { prompt, size = "256x256", steps = 2 }));

        // Routes and ids: nothing to find, nothing to change.
        foreach (var (method, path) in new (HttpMethod, string)[]
                 {
                     (HttpMethod.Get, "/v1/jobs/does-not-exist"), (HttpMethod.Get, "/v1/jobs/..%2F..%2Fetc%2Fpasswd"),
                     (HttpMethod.Get, "/v1/jobs/%00"), (HttpMethod.Get, $"/v1/jobs/{existingJobId}/images/-1"),
                     (HttpMethod.Get, $"/v1/jobs/{existingJobId}/images/99999999999"), (HttpMethod.Get, $"/v1/jobs/{existingJobId}/images/1"),
                     (HttpMethod.Get, "/v1/jobs?limit=0"), (HttpMethod.Get, "/v1/jobs?limit=100000"), (HttpMethod.Get, "/v1/jobs?cursor=-1"),
                     (HttpMethod.Get, "/v1/jobs?cursor=abc"), (HttpMethod.Get, "/v1/jobs?status=RUNNING"), (HttpMethod.Get, "/v1/jobs?user=*"),
                     (HttpMethod.Delete, "/v1/jobs/does-not-exist"), (HttpMethod.Delete, $"/v1/jobs/{existingJobId}"),
                     (HttpMethod.Put, "/v1/jobs"), (HttpMethod.Patch, $"/v1/jobs/{existingJobId}"), (HttpMethod.Get, "/status/does-not-exist"),
                     (HttpMethod.Get, "/v1/jobs/" + new string('x', 5000)), (HttpMethod.Post, "/v1/admin/queue/pause"),
                     (HttpMethod.Post, "/v1/admin/users"), (HttpMethod.Delete, "/v1/admin/users/admin"),
                 })
            yield return new MalformedCase($"{method} {path[..Math.Min(path.Length, 60)]}", (url, key) => Request(method, url + path, key, null));
    }

    private static IEnumerable<(string, byte[])> BadJson() =>
    [
        ("empty body", []), ("{", U("{")), ("}", U("}")), ("unterminated string", U("{\"prompt\":\"x")), ("missing value", U("{\"prompt\":}")),
        ("trailing comma", U("{\"prompt\":\"x\",}")), ("single quotes", U("{'prompt':'x'}")), ("unquoted key", U("{prompt:\"x\"}")),
        ("array", U("[]")), ("null", U("null")), ("number", U("42")), ("string", U("\"prompt\"")), ("true", U("true")),
        ("two objects", U("{\"prompt\":\"x\"}{}")), ("NaN", U("{\"prompt\":\"x\",\"width\":NaN}")), ("Infinity", U("{\"prompt\":\"x\",\"steps\":Infinity}")),
        ("bad escape", U("{\"prompt\":\"\\u12\"}")), ("comment", U("{\"prompt\":\"x\"/*c*/}")), ("deep nesting", U(new string('[', 5000) + new string(']', 5000))),
        ("deep object nesting", U(string.Concat(Enumerable.Repeat("{\"a\":", 2000)) + "1" + new string('}', 2000))),
        ("binary garbage", Enumerable.Range(0, 512).Select(i => (byte)(i * 37 % 256)).ToArray()),
        ("UTF-16 body", Encoding.Unicode.GetBytes("{\"prompt\":\"x\",\"width\":256,\"height\":256}")),
        ("control character in string", U("{\"prompt\":\"a\u0001b\",\"width\":7}")),
        ("XML body instead of JSON", U("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><r>&e;</r>")),
    ];

    /// <summary>Prompts (XML is the structured prompt format) that a parser with DTDs allowed would expand or resolve.</summary>
    private static IEnumerable<(string Name, string Prompt)> XmlAttacks()
    {
        var laughs = new StringBuilder("<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
        for (var i = 1; i <= 9; i++) laughs.Append($"<!ENTITY lol{i} \"{string.Concat(Enumerable.Repeat(i == 1 ? "&lol;" : $"&lol{i - 1};", 10))}\">");
        laughs.Append("]><character_1><n>&lol9;</n></character_1>");
        return
        [
            ("billion laughs", laughs.ToString()),
            ("external entity file:///etc/passwd", "<!DOCTYPE c [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><character_1><n>&x;</n></character_1>"),
            ("external entity http", "<!DOCTYPE c [<!ENTITY x SYSTEM \"http://127.0.0.1:9/x\">]><character_1><n>&x;</n></character_1>"),
            ("parameter entity", "<!DOCTYPE c [<!ENTITY % p SYSTEM \"http://127.0.0.1:9/p.dtd\"> %p;]><character_1/>"),
            ("external DTD", "<!DOCTYPE c SYSTEM \"http://127.0.0.1:9/c.dtd\"><character_1><n>x</n></character_1>"),
            ("quadratic blowup", $"<!DOCTYPE c [<!ENTITY a \"{new string('a', 5000)}\">]><character_1><n>{string.Concat(Enumerable.Repeat("&a;", 2000))}</n></character_1>"),
            ("unclosed tag", "<character_1><n>x</n>"),
            ("mismatched tags", "<character_1><n>x</character_1></n>"),
            ("too deep", string.Concat(Enumerable.Repeat("<a>", 200)) + string.Concat(Enumerable.Repeat("</a>", 200))),
            ("undefined entity", "<character_1><n>&undefined;</n></character_1>"),
            ("processing instruction bomb", "<?xml version=\"1.0\" encoding=\"UTF-7\"?><!DOCTYPE x [<!ENTITY y \"z\">]><character_1/>"),
        ];
    }

    private static IEnumerable<(string, byte[])> WrongTypes() =>
    [
        ("prompt number", Json(new { prompt = 123 })), ("prompt null", U("{\"prompt\":null,\"width\":256}")), ("prompt array", Json(new { prompt = new[] { "a" } })),
        ("prompt object", Json(new { prompt = new { a = 1 } })), ("prompt missing", Json(new { width = 256 })), ("prompt blank", Json(new { prompt = "   \n\t" })),
        ("width string", Json(new { prompt = Ok, width = "256" })), ("width fraction", U($"{{\"prompt\":\"x\",\"width\":256.5}}")),
        ("width bool", Json(new { prompt = Ok, width = true })), ("steps string", Json(new { prompt = Ok, steps = "many" })),
        ("seed string", Json(new { prompt = Ok, seed = "abc" })), ("count array", Json(new { prompt = Ok, count = new int[0] })),
        ("guidance string", Json(new { prompt = Ok, guidance = "x" })), ("sampler number", Json(new { prompt = Ok, sampler = 5 })),
        ("sampler unknown", Json(new { prompt = Ok, sampler = "dpm++" })), ("negative_prompt number", Json(new { prompt = Ok, negative_prompt = 5 })),
        ("priority object", Json(new { prompt = Ok, priority = new { } })), ("priority unknown", Json(new { prompt = Ok, priority = "urgent" })),
        ("priority above class", Json(new { prompt = Ok, priority = "high", width = 256, height = 256 })),
        ("webhook_url number", Json(new { prompt = Ok, webhook_url = 12 })), ("webhook_url file", Json(new { prompt = Ok, webhook_url = "file:///etc/passwd" })),
        ("webhook_url without secret", Json(new { prompt = Ok, webhook_url = "http://127.0.0.1:9/hook", width = 256, height = 256 })),
        ("system_prompt array", Json(new { prompt = Ok, system_prompt = new[] { 1 } })),
    ];

    private static IEnumerable<(string, byte[])> HugeSizes() =>
    [
        ("width 1e9", Json(new { prompt = Ok, width = 1_000_000_000, height = 256 })), ("height 100000", Json(new { prompt = Ok, width = 256, height = 100_000 })),
        ("width negative", Json(new { prompt = Ok, width = -256, height = 256 })), ("width 0", Json(new { prompt = Ok, width = 0, height = 256 })),
        ("width not multiple of 16", Json(new { prompt = Ok, width = 257, height = 256 })), ("width above int", U("{\"prompt\":\"x\",\"width\":2147483648}")),
        ("4096x4096 above MaxSide", Json(new { prompt = Ok, width = 4096, height = 4096 })),
        ("steps 1000000", Json(new { prompt = Ok, steps = 1_000_000 })), ("steps negative", Json(new { prompt = Ok, steps = -1 })), ("steps 0", Json(new { prompt = Ok, steps = 0 })),
        ("count 1000", Json(new { prompt = Ok, count = 1000 })), ("count 0", Json(new { prompt = Ok, count = 0 })),
        ("guidance 1e308", U("{\"prompt\":\"x\",\"guidance\":1e308}")), ("guidance negative", Json(new { prompt = Ok, guidance = -1 })),
        ("seed 1e30", U("{\"prompt\":\"x\",\"seed\":1e30}")), ("seed above 2^53", Json(new { prompt = Ok, seed = 1L << 60 })), ("seed negative", Json(new { prompt = Ok, seed = -5 })),
        ("seed 20 digits", U("{\"prompt\":\"x\",\"seed\":99999999999999999999}")),
    ];

    private static IEnumerable<(string, byte[])> BrokenUnicode() =>
    [
        ("invalid UTF-8 byte", [.. U("{\"prompt\":\""), 0xFF, 0xFE, .. U("\",\"width\":256}")]),
        ("overlong UTF-8 slash", [.. U("{\"prompt\":\""), 0xC0, 0xAF, .. U("\"}")]),
        ("UTF-8 encoded surrogate", [.. U("{\"prompt\":\""), 0xED, 0xA0, 0x80, .. U("\"}")]),
        ("5-byte UTF-8", [.. U("{\"prompt\":\""), 0xF8, 0x88, 0x80, 0x80, 0x80, .. U("\"}")]),
        ("truncated UTF-8", [.. U("{\"prompt\":\"a"), 0xE3, 0x81]),
        ("lone high surrogate escape", U("{\"prompt\":\"\\uD800\"}")), ("lone low surrogate escape", U("{\"prompt\":\"x\\uDC00y\",\"width\":7}")),
        ("NUL in XML prompt", U("{\"prompt\":\"<character_1><n>a\\u0000b</n></character_1>\",\"width\":256,\"height\":256}")),
        ("only zero-width spaces", Json(new { prompt = "\u200B\u200B\u2060" , width = 7 })),
        ("fullwidth digits as width", U("{\"prompt\":\"x\",\"width\":２５６}")),
        ("arabic-indic digits as width", Json(new { prompt = Ok, width = "٢٥٦" })),
        ("RTL override in sampler", Json(new { prompt = Ok, sampler = "\u202Eeuler" })),
        ("homoglyph sampler", Json(new { prompt = Ok, sampler = "eul\u0435r" })),
        ("emoji ZWJ prompt with bad size", Json(new { prompt = "👩‍👩‍👧‍👦🏳️‍🌈", width = 100 })),
        ("combining marks flood with bad steps", Json(new { prompt = "Z" + string.Concat(Enumerable.Repeat("\u0336\u0334\u0335", 3000)), steps = 0 })),
    ];

    private static IEnumerable<(string, byte[])> OpenAiWrong() =>
    [
        ("openai size huge", Json(new { prompt = "x", size = "99999x99999" })), ("openai size words", Json(new { prompt = "x", size = "big" })),
        ("openai size negative", Json(new { prompt = "x", size = "-256x256" })), ("openai n 1000", Json(new { prompt = "x", n = 1000, size = "256x256" })),
        ("openai n 0", Json(new { prompt = "x", n = 0, size = "256x256" })), ("openai n string", Json(new { prompt = "x", n = "1" })),
        ("openai prompt missing", Json(new { size = "256x256" })), ("openai prompt number", Json(new { prompt = 5, size = "256x256" })),
        ("openai response_format unknown", Json(new { prompt = "x", size = "256x256", response_format = "gif" })),
        ("openai steps 1e6", Json(new { prompt = "x", size = "256x256", steps = 1_000_000 })), ("openai seed negative", Json(new { prompt = "x", size = "256x256", seed = -1 })),
        ("openai size with unicode x", Json(new { prompt = "x", size = "256×256" })), ("openai size fullwidth", Json(new { prompt = "x", size = "２５６x２５６" })),
    ];

    private static MalformedCase Post(string route, string name, byte[] body, bool chunked = false) =>
        new($"POST {route} {name}", (url, key) => Request(HttpMethod.Post, url + route, key, body, chunked));

    private static HttpRequestMessage Request(HttpMethod method, string uri, string key, byte[]? body, bool chunked = false)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null) request.Content = Content(body, chunked);
        return request;
    }

    private static HttpContent Content(byte[] body, bool chunked = false)
    {
        HttpContent content = chunked ? new StreamContent(new MemoryStream(body)) : new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (chunked) content.Headers.ContentLength = null;
        return content;
    }

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    private static byte[] Json(object o) => System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(o);
}
