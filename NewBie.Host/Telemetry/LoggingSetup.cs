using Serilog;

namespace NewBie.Host.Telemetry;

public static class LoggingSetup
{
    /// <summary>Serilog to the console, configured from the "Serilog" section; the static Log.Logger is left alone.</summary>
    public static IHostApplicationBuilder AddTelemetry(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSerilog((services, logger) => logger
            .ReadFrom.Configuration(services.GetRequiredService<IConfiguration>())
            .Enrich.FromLogContext()
            .WriteTo.Console(formatProvider: System.Globalization.CultureInfo.InvariantCulture), preserveStaticLogger: true);
        return builder;
    }
}
