using System.Net;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace NewBie.Host.Tests.Api;

/// <summary>The document only reads the app: one server for the class.</summary>
public sealed class OpenApiTests(OpenApiTests.App fixture) : IClassFixture<OpenApiTests.App>
{
    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new();

        public void Dispose() => Server.Dispose();
    }

    private readonly NewBieApplication _app = fixture.Server;

    private async Task<OpenApiDocument> DocumentAsync()
    {
        var json = await _app.ClientFor().GetStringAsync("/openapi/v1.json");
        var result = OpenApiDocument.Parse(json, OpenApiConstants.Json, new OpenApiReaderSettings());
        Assert.True(result.Diagnostic is null || result.Diagnostic.Errors.Count == 0,
            string.Join("; ", result.Diagnostic?.Errors.Select(e => $"{e.Pointer}: {e.Message}") ?? []));
        Assert.Equal("3.0", result.Diagnostic?.SpecificationVersion switch { OpenApiSpecVersion.OpenApi3_0 => "3.0", var v => v.ToString() });
        return result.Document!;
    }

    /// <summary>Every routed endpoint of the app that is meant to be described: (path as OpenAPI writes it, method).</summary>
    private IEnumerable<(string Path, string Method)> PublicRoutes() =>
        _app.Services.GetServices<EndpointDataSource>().SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            // Middleware endpoints (health checks, /metrics) carry no method: they answer GET.
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods is { Count: > 0 } methods ? methods : ["GET"])
                .Select(m => (Normalise(e.RoutePattern.RawText!), m.ToUpperInvariant())));

    private static string Normalise(string pattern)
    {
        var path = "/" + System.Text.RegularExpressions.Regex.Replace(pattern.Trim('/'), @"\{([^}:]+)(:[^}]*)?\}", "{$1}");
        return path;
    }

    [Fact]
    public async Task Document_parses_as_valid_openapi_and_lists_every_public_route()
    {
        var document = await DocumentAsync();
        var described = document.Paths.SelectMany(p => (p.Value.Operations ?? []).Select(o => (Normalise(p.Key), o.Key.Method.ToUpperInvariant()))).ToHashSet();
        var routes = PublicRoutes().ToList();

        Assert.Contains(("/v1/jobs", "POST"), routes);
        Assert.Contains(("/v1/webhook-secret", "POST"), routes);
        Assert.Contains(("/metrics", "GET"), routes);
        Assert.Contains(("/readyz", "GET"), routes);
        Assert.All(routes, route => Assert.Contains(route, described));
    }

    [Fact]
    public async Task Every_operation_has_a_summary_a_tag_a_success_response_and_described_errors()
    {
        var document = await DocumentAsync();

        foreach (var (path, item) in document.Paths)
            foreach (var (method, operation) in item.Operations ?? [])
            {
                var name = $"{method} {path}";
                Assert.False(string.IsNullOrWhiteSpace(operation.Summary), $"{name} has no summary");
                Assert.True(operation.Tags?.Count > 0, $"{name} has no tag");
                Assert.True(operation.Responses?.Keys.Any(k => k.StartsWith('2')) == true, $"{name} has no 2xx response");
                // Errors are problem+json, except on the OpenAI-compatible route, whose clients expect OpenAI's error object.
                // (401 and 429 come from the caller check and rate limit shared by every route.)
                foreach (var (status, response) in operation.Responses!.Where(r => r.Key.StartsWith('4')))
                {
                    var errorType = path == "/v1/images/generations" && status is not ("401" or "429") ? "application/json" : "application/problem+json";
                    Assert.True(response.Content?.TryGetValue(errorType, out var content) == true && content.Schema is not null, $"{name} {status} is not described as {errorType}");
                }
            }
    }

    [Fact]
    public async Task Submit_operation_describes_its_request_body_and_the_job_schema_is_snake_case()
    {
        var document = await DocumentAsync();

        var submit = document.Paths.Single(p => Normalise(p.Key) == "/v1/jobs").Value.Operations![HttpMethod.Post];
        Assert.True(submit.RequestBody?.Content?.ContainsKey("application/json"));
        Assert.True(submit.Responses!.ContainsKey("202"));
        var job = document.Components!.Schemas!["JobDto"];
        Assert.Contains("queue_position", job.Properties!.Keys);
        Assert.Contains("webhook", job.Properties!.Keys);
    }

    [Fact]
    public async Task Reference_page_is_served_with_its_script_and_points_at_the_document()
    {
        var client = _app.ClientFor();
        using var response = await client.GetAsync("/scalar");
        using var script = await client.GetAsync("/scalar/scalar.js");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var page = await response.Content.ReadAsStringAsync();
        Assert.Contains("<title>NewBie Server API</title>", page);
        Assert.Contains("\"url\":\"openapi/v1.json\"", page);
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }
}
