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
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    public static WebApplication MapOpenApiDocument(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference(ReferencePath, o => o.WithTitle("NewBie Server API").WithOpenApiRoutePattern("/openapi/{documentName}.json"));
        return app;
    }
}
