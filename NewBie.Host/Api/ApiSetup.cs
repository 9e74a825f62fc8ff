using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Api;

public static class ApiSetup
{
    public static IHostApplicationBuilder AddApi(this IHostApplicationBuilder builder)
    {
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            // The web defaults read "256" as 256; a string where the API documents a number is a wrong type (400).
            o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
        });
        builder.Services.AddProblemDetails();
        builder.Services.AddExceptionHandler<DiskFullHandler>();
        builder.Services.AddOptions<ServerOptions>().BindConfiguration(ServerOptions.Section)
            .Validate(o => ServerOptions.IsValidBase(o.PublicBaseUrl), "Server:PublicBaseUrl must be an absolute http or https URL without credentials, query or fragment.")
            .Validate(o => o.ListenBacklog > 0, "Server:ListenBacklog must be positive.")
            .ValidateOnStart();
        builder.Services.AddOptions<SocketTransportOptions>()
            .Configure<IOptions<ServerOptions>>((sockets, server) => sockets.Backlog = server.Value.ListenBacklog);
        builder.Services.AddSingleton<JobRequestValidator>();
        builder.Services.AddSingleton<JobSubmission>();
        builder.Services.AddHostedService<IdleMemoryTrim>();
        return builder;
    }

    public static WebApplication UseApi(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        return app;
    }
}
