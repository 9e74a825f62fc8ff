using NewBie.Host.Accounts;
using Microsoft.Extensions.Options;
using NewBie.Host.Api;
using NewBie.Host.Storage;
using Serilog;
using Serilog.Context;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace NewBie.Host.Telemetry;

public sealed class LogsOptions
{
    public const string Section = "Logs";

    /// <summary>Write compact JSON log files to &lt;data-dir&gt;/logs/newbie-YYYYMMDD.json (one per day). Default true.</summary>
    public bool JsonFile { get; set; } = true;

    /// <summary>Daily JSON log files kept; older ones are deleted. Default 14.</summary>
    public int RetainedFiles { get; set; } = 14;
}

public static class LoggingSetup
{
    public const string JobIdProperty = "JobId", UserIdProperty = "UserId";

    /// <summary>
    /// Serilog: levels and sinks from the "Serilog" section (the console there by default), plus the rolling JSON
    /// file in the data folder, which is placed by code because it follows --data-dir. The static Log.Logger is left alone.
    /// </summary>
    public static IHostApplicationBuilder AddStructuredLogs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<LogsOptions>().BindConfiguration(LogsOptions.Section)
            .Validate(o => o.RetainedFiles >= 1, "Logs:RetainedFiles must be at least 1.").ValidateOnStart();
        builder.Services.AddSerilog((services, logger) =>
        {
            var configuration = services.GetRequiredService<IConfiguration>();
            // Framework chatter stays at Warning unless the configuration says otherwise (one request log line comes from UseSerilogRequestLogging).
            logger.MinimumLevel.Information()
                .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
                .MinimumLevel.Override("Hangfire", LogEventLevel.Warning)
                // A failing readiness check is an answer to a poll (in the /readyz body), not an error on every poll.
                .MinimumLevel.Override("Microsoft.Extensions.Diagnostics.HealthChecks", LogEventLevel.Fatal)
                .ReadFrom.Configuration(configuration)
                .Enrich.FromLogContext();
            // Without an appsettings.json beside it the server must still say what it does.
            if (!configuration.GetSection("Serilog:WriteTo").Exists())
                logger.WriteTo.Console(formatProvider: System.Globalization.CultureInfo.InvariantCulture);
            var logs = services.GetRequiredService<IOptions<LogsOptions>>().Value;
            if (logs.JsonFile)
            {
                logger.WriteTo.File(new CompactJsonFormatter(), LogFilePattern(services.GetRequiredService<IOptions<StorageOptions>>().Value),
                    rollingInterval: RollingInterval.Day, retainedFileCountLimit: logs.RetainedFiles);
            }
        }, preserveStaticLogger: true);
        return builder;
    }

    /// <summary>The JSON log files' path pattern; Serilog inserts the date before the extension.</summary>
    public static string LogFilePattern(StorageOptions storage) => Path.Combine(Path.GetFullPath(storage.DataDir), "logs", "newbie-.json");

    /// <summary>Tags every log line written until disposal (on this async flow) with the job and its owner.</summary>
    public static IDisposable JobContext(string jobId, string userId)
    {
        var job = LogContext.PushProperty(JobIdProperty, jobId);
        var user = LogContext.PushProperty(UserIdProperty, userId);
        return new Both(user, job);
    }

    /// <summary>
    /// One request log line per request carrying the caller (and the job of a /v1/jobs/{id} route); every line logged
    /// while handling a request carries the same properties.
    /// </summary>
    public static WebApplication UseRequestLogging(this WebApplication app)
    {
        app.UseSerilogRequestLogging(options =>
        {
            // Without it the middleware writes to the static Log.Logger, which this app leaves silent.
            options.Logger = app.Services.GetRequiredService<Serilog.ILogger>();
            options.GetLevel = RequestLevel;
            options.EnrichDiagnosticContext = (diagnostics, http) =>
            {
                foreach (var (name, value) in RequestProperties(http)) diagnostics.Set(name, value);
            };
        });
        app.Use(async (http, next) =>
        {
            var pushed = RequestProperties(http).Select(p => LogContext.PushProperty(p.Name, p.Value)).ToList();
            try
            {
                await next(http);
            }
            finally
            {
                for (var i = pushed.Count - 1; i >= 0; i--) pushed[i].Dispose();
            }
        });
        return app;
    }

    /// <summary>Probes and scrapes arrive every few seconds (and /readyz answers 503 by design): Debug, not one line each at Information or Error.</summary>
    private static LogEventLevel RequestLevel(HttpContext http, double elapsedMs, Exception? error) =>
        error is not null ? LogEventLevel.Error
        : http.Request.Path.Value is "/healthz" or "/readyz" or "/metrics" ? LogEventLevel.Debug
        : http.Response.StatusCode >= 500 ? LogEventLevel.Error
        : LogEventLevel.Information;

    private static IEnumerable<(string Name, string Value)> RequestProperties(HttpContext http)
    {
        var user = CurrentUser.BindAsync(http).GetAwaiter().GetResult();
        if (user is { Id.Length: > 0 }) yield return (UserIdProperty, user.Id);
        if (http.Request.Path.StartsWithSegments("/v1/jobs") && http.GetRouteValue("id") is string jobId) yield return (JobIdProperty, jobId);
    }

    private sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }
}
