using Serilog;
using Serilog.Events;

namespace NewBie.Host.Telemetry;

public static class LoggingSetup
{
    /// <summary>Serilog to the console, configured from the "Serilog" section; the static Log.Logger is left alone.</summary>
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        // Framework chatter stays at Warning unless the configuration says otherwise (one request log line comes from UseSerilogRequestLogging).
        builder.Services.AddSerilog((services, logger) => logger
            .MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Hangfire", LogEventLevel.Warning)
            .ReadFrom.Configuration(services.GetRequiredService<IConfiguration>())
            .Enrich.FromLogContext()
            .WriteTo.Console(formatProvider: System.Globalization.CultureInfo.InvariantCulture), preserveStaticLogger: true);
        return builder;
    }
}
