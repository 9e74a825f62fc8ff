using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace NewBie.Host.Api;

/// <summary>The OpenAPI document generated from the endpoints (/openapi/v1.json) and its reference page (/scalar).</summary>
public static class OpenApiSetup
{
    public const string DocumentPath = "/openapi/v1.json", ReferencePath = "/scalar";

    public static IHostApplicationBuilder AddOpenApiDocument(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi("v1", o =>
        {
            // 3.0 rather than 3.1: the version most generators and validators read.
            o.OpenApiVersion = OpenApiSpecVersion.OpenApi3_0;
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "NewBie Server";
                document.Info.Description = "Image generation with NewBie-image-Exp0.1 on one shared GPU: jobs, events, images, webhooks and an OpenAI-compatible endpoint. Errors are RFC 9457 problem+json with a stable `code`.";
                // Health checks and /metrics are middleware endpoints, invisible to the API explorer: described here.
                AddGet(document, "/healthz", "Health", "Liveness: the process answers", "application/json", StatusCodes.Status200OK);
                var readyz = AddGet(document, "/readyz", "Health", "Readiness: model loaded, storage writable, queue has room; 503 says why", "application/json",
                    StatusCodes.Status200OK, StatusCodes.Status503ServiceUnavailable);
                readyz.Parameters = [new OpenApiParameter
                {
                    Name = "wait",
                    In = ParameterLocation.Query,
                    Description = $"Seconds (0 to {Telemetry.HealthEndpoints.MaxWaitSeconds}) to hold the answer while the model is still loading: it comes once loading ends or the time is up",
                    Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Minimum = "0", Maximum = $"{Telemetry.HealthEndpoints.MaxWaitSeconds}" },
                }];
                AddGet(document, "/metrics", "Telemetry", "Prometheus metrics (text exposition format)", "text/plain", StatusCodes.Status200OK);
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    private static OpenApiOperation AddGet(OpenApiDocument document, string path, string tag, string summary, string contentType, params int[] statuses)
    {
        var responses = new OpenApiResponses();
        foreach (var status in statuses)
            responses[status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new OpenApiResponse
            {
                Description = status < 300 ? "OK" : "Not ready",
                Content = new Dictionary<string, OpenApiMediaType>
                {
                    [contentType] = new() { Schema = new OpenApiSchema { Type = contentType == "text/plain" ? JsonSchemaType.String : JsonSchemaType.Object } },
                },
            };
        var operation = new OpenApiOperation { Summary = summary, Tags = new HashSet<OpenApiTagReference> { new(tag, document) }, Responses = responses };
        document.Paths[path] = new OpenApiPathItem { Operations = new Dictionary<HttpMethod, OpenApiOperation> { [HttpMethod.Get] = operation } };
        return operation;
    }

    public static WebApplication MapOpenApiDocument(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference(ReferencePath, o => o.WithTitle("NewBie Server API").WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        return app;
    }
}
