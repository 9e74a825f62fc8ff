using Prometheus;

namespace NewBie.Host.Telemetry;

public static class TelemetrySetup
{
    /// <summary>Structured logs, the NewBie metrics and the readiness checks.</summary>
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        builder.AddStructuredLogs();
        builder.Services.AddMetrics();
        builder.Services.AddSingleton<IGpuMemory, NvmlGpuMemory>();
        builder.Services.AddSingleton<NewBieMetrics>();
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.AddReadinessChecks();
        builder.Services.AddMetricsPolicy();
        return builder;
    }

    /// <summary>First in the pipeline, so that the request log line times and sees the whole request.</summary>
    public static WebApplication UseTelemetry(this WebApplication app) => app.UseRequestLogging();

    /// <summary>/healthz, /readyz and the Prometheus /metrics (admins or the scrape token only).</summary>
    public static WebApplication MapTelemetry(this WebApplication app)
    {
        app.MapHealth();
        app.MapMetrics("/metrics", app.Services.GetRequiredService<PrometheusExporter>().Registry).WithTags("Telemetry")
            .RequireAuthorization(MetricsAccess.Policy);
        return app;
    }
}
