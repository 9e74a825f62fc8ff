using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace NewBie.LoadBench;

/// <summary>
/// Requests generated from the server's own /openapi/v1.json: for every operation, every path and query parameter and
/// every property of its JSON body is given, one at a time, values of the wrong type, out of range, huge, empty, or
/// holding characters that text cannot carry (NUL, lone surrogates, control characters), plus broken bodies. Each
/// request names nothing that exists (ids and user names are made up), so none may change the store, and none may be
/// answered 5xx. No fuzzing tool from npm or Debian reads OpenAPI 3 and runs in CI without Python; this is the
/// bench's malformed run extended to every route and field.
/// </summary>
internal static class OpenApiFuzz
{
    /// <summary>An id and a user name that exist nowhere: a request that survives validation finds nothing to change.</summary>
    public const string Nobody = "nobody-fuzz-0000";

    /// <summary>Operations that change state without any input to mutate (logout, pause, rotate a secret, delete all history): not sent.</summary>
    private static bool HasNoInput(JsonElement operation) =>
        (!operation.TryGetProperty("parameters", out var p) || p.GetArrayLength() == 0) && !operation.TryGetProperty("requestBody", out _);

    public static IEnumerable<MalformedCase> Cases(JsonElement document)
    {
        var schemas = document.GetProperty("components").GetProperty("schemas");
        foreach (var path in document.GetProperty("paths").EnumerateObject())
        foreach (var op in path.Value.EnumerateObject())
        {
            var method = new HttpMethod(op.Name.ToUpperInvariant());
            if (method != HttpMethod.Get && HasNoInput(op.Value)) continue;
            var parameters = op.Value.TryGetProperty("parameters", out var ps) ? ps.EnumerateArray().ToList() : [];
            var body = BodySchema(op.Value, schemas);
            var label = $"{method} {path.Name}";

            // Each parameter in turn takes each bad value; the others hold harmless made-up values.
            foreach (var parameter in parameters)
            {
                var name = parameter.GetProperty("name").GetString()!;
                var inPath = parameter.GetProperty("in").GetString() == "path";
                // An empty path segment would address the parent route (DELETE /v1/me/history/{id} → /v1/me/history/).
                foreach (var (what, value) in ParameterValues(Type(parameter.GetProperty("schema"))).Where(v => !(inPath && v.Value.Length == 0)))
                    yield return Case($"{label} {name}={what}", method, path.Name, parameters, (name, value), body is null ? null : "{}");
            }
            if (body is null) continue;
            // Each body property in turn takes each bad value, alone in the object (required fields then miss too).
            foreach (var property in body.Value.TryGetProperty("properties", out var props) ? props.EnumerateObject() : Enumerable.Empty<JsonProperty>())
                foreach (var (what, json) in JsonValues(Type(property.Value)))
                    yield return Case($"{label} body.{property.Name}={what}", method, path.Name, parameters, null, $"{{\"{property.Name}\":{json}}}");
            foreach (var (what, raw) in BrokenBodies())
                yield return Case($"{label} body {what}", method, path.Name, parameters, null, raw);
        }
    }

    private static MalformedCase Case(string name, HttpMethod method, string template, List<JsonElement> parameters, (string Name, string Value)? bad, string? body) =>
        new(name.Length > 120 ? name[..120] : name, (url, key) =>
        {
            var path = template;
            var query = new List<string>();
            foreach (var p in parameters)
            {
                var pName = p.GetProperty("name").GetString()!;
                var value = bad is { } b && b.Name == pName ? b.Value : Harmless(Type(p.GetProperty("schema")));
                if (p.GetProperty("in").GetString() == "path") path = path.Replace("{" + pName + "}", value, StringComparison.Ordinal);
                else if (bad is { } q && q.Name == pName) query.Add($"{Uri.EscapeDataString(pName)}={value}");
            }
            var request = new HttpRequestMessage(method, url + path + (query.Count > 0 ? "?" + string.Join('&', query) : ""));
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            if (body is not null) request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) { Headers = { ContentType = new MediaTypeHeaderValue("application/json") } };
            return request;
        });

    /// <summary>The JSON schema of an operation's application/json body, with a $ref (or a oneOf holding one) resolved.</summary>
    private static JsonElement? BodySchema(JsonElement operation, JsonElement schemas)
    {
        if (!operation.TryGetProperty("requestBody", out var rb) || !rb.TryGetProperty("content", out var content)
            || !content.TryGetProperty("application/json", out var json) || !json.TryGetProperty("schema", out var schema)) return null;
        if (schema.TryGetProperty("oneOf", out var oneOf)) schema = oneOf.EnumerateArray().FirstOrDefault(s => s.TryGetProperty("$ref", out _));
        return schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("$ref", out var r)
            ? schemas.GetProperty(r.GetString()!.Split('/')[^1]) : schema;
    }

    private static string Type(JsonElement schema) =>
        schema.TryGetProperty("type", out var t) ? (t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().First(x => x.GetString() != "null").GetString()! : t.GetString()!) : "string";

    private static string Harmless(string type) => type is "integer" or "number" ? "999999" : type == "boolean" ? "false" : Nobody;

    /// <summary>Values for a path or query parameter, URL-encoded as sent.</summary>
    private static IEnumerable<(string What, string Value)> ParameterValues(string type)
    {
        yield return ("empty", "");
        yield return ("NUL", "%00");
        yield return ("traversal", "..%2F..%2Fetc%2Fpasswd");
        yield return ("5000 chars", new string('x', 5000));
        yield return ("lone surrogate", "%ED%A0%80");
        yield return ("invalid UTF-8", "%FF%FE");
        yield return ("RTL override", Uri.EscapeDataString("\u202Eabc"));
        yield return ("upper-case made-up id", Nobody.ToUpperInvariant());
        if (type is "integer" or "number")
        {
            yield return ("-1", "-1");
            yield return ("2^63", "9223372036854775808");
            yield return ("1e308", "1e308");
            yield return ("word", "abc");
        }
        else if (type == "boolean") yield return ("word", "maybe");
    }

    /// <summary>
    /// JSON values for a body property: wrong types always, and range and character abuse for its own type. Every one is
    /// invalid for any field (a plausible string such as a path would make a valid prompt, and a job).
    /// </summary>
    private static IEnumerable<(string What, string Json)> JsonValues(string type)
    {
        yield return ("null", "null");
        yield return ("object", "{\"a\":{\"b\":[1]}}");
        yield return ("array", "[1,\"x\",null]");
        yield return ("deep array", new string('[', 500) + new string(']', 500));
        if (type == "string")
        {
            yield return ("number", "123");
            yield return ("bool", "true");
            yield return ("empty", "\"\"");
            yield return ("NUL", "\"a\\u0000b\"");
            yield return ("control", "\"a\\u0007b\"");
            yield return ("lone surrogate", "\"\\ud800\"");
            yield return ("100 KB", "\"" + new string('a', 100 * 1024) + "\"");
            yield return ("XML entity", "\"<!DOCTYPE a [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><a>&e;</a>\"");
        }
        else if (type is "integer" or "number")
        {
            yield return ("string", "\"5\"");
            yield return ("-1", "-1");
            yield return ("0", "0");
            yield return ("2^31", "2147483648");
            yield return ("2^63", "9223372036854775808");
            yield return ("1e308", "1e308");
            yield return ("fraction", "0.5");
        }
        else if (type == "boolean") yield return ("string", "\"true\"");
    }

    private static IEnumerable<(string What, string Raw)> BrokenBodies() =>
    [
        ("empty", ""), ("not JSON", "{not json"), ("array", "[]"), ("null", "null"), ("truncated", "{\"a\":"),
        ("two objects", "{}{}"), ("UTF-8 BOM then garbage", "\uFEFF\u0000\u0001"),
    ];

    /// <summary>The document the server publishes, read once before the run.</summary>
    public static async Task<JsonElement> DocumentAsync(HttpClient http, string url)
    {
        using var response = await http.GetAsync(url + "/openapi/v1.json");
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.Deserialize<JsonElement>();
    }
}
