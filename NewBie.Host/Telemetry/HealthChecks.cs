using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Storage;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Telemetry;

/// <summary>Ready when the model is loaded; the reason otherwise (loading, or why it failed).</summary>
public sealed class ModelReadiness(EngineHost engines, MemoryPlanner planner) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var model = engines.Engine?.Model;
        var data = new Dictionary<string, object>
        {
            ["engine"] = engines.State.ToString().ToLowerInvariant(),
            ["model"] = (object?)model?.Id ?? engines.Choice?.Id ?? "",
            ["tiny"] = model?.IsTiny ?? engines.Choice?.IsTiny ?? false,
            // The planner's description names the GPU ("cuda:0 NVIDIA H100 80GB HBM3"); an engine built elsewhere says only its device.
            ["device"] = planner.Decision?.Description ?? model?.Device ?? "",
            ["memory_plan"] = (model?.MemoryPlan ?? planner.Decision?.Plan)?.Name() ?? "",
        };
        return Task.FromResult(engines.State == EngineState.Ready
            ? HealthCheckResult.Healthy($"model {model!.Id} is loaded on {model.Device}", data)
            : HealthCheckResult.Unhealthy(engines.Problem ?? "the model is not loaded", data: data));
    }
}

/// <summary>
/// Ready when the data folder, the outputs folder (when the outputs are files) and the app database all take a write: a full disk, a read-only
/// mount or a broken permission shows here before a job fails on it; so does free space below Storage:MinFreeBytes,
/// while submits are answered 507 insufficient_storage.
/// </summary>
public sealed class StorageReadiness(DataDirectory dataDirectory, Outputs.IOutputBlobs outputs, AppDatabase database, StorageSpace space, TimeProvider time) : IHealthCheck
{
    public const string ProbeFileName = ".write-probe";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        string[] folders = outputs.LocalFolder is { } local ? [dataDirectory.Root, local] : [dataDirectory.Root];
        foreach (var folder in folders)
        {
            var probe = Path.Combine(folder, ProbeFileName);
            try
            {
                Directory.CreateDirectory(folder);
                File.WriteAllBytes(probe, [1]);
                File.Delete(probe);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"storage is not writable: cannot write {probe} ({e.Message})"));
            }
        }
        try
        {
            database.Collection<ProbeRecord>("health").Upsert(new ProbeRecord { Id = "probe", At = time.GetUtcNow().UtcDateTime });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or LiteDB.LiteException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"storage is not writable: the app database refused a write ({e.Message})"));
        }
        if (space.Check() is { Low: true } low) return Task.FromResult(HealthCheckResult.Unhealthy(low.Describe()));
        return Task.FromResult(HealthCheckResult.Healthy("the data folder, outputs and the app database take writes"));
    }

    public sealed class ProbeRecord
    {
        public string Id { get; set; } = "";
        public DateTime At { get; set; }
    }
}

/// <summary>Ready while the queue has room for another job (a full queue answers submits with 503 queue_full).</summary>
public sealed class QueueReadiness(JobStore jobs, IOptions<JobsOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var queued = jobs.CountQueued();
        var max = options.Value.MaxQueuedJobs;
        var data = new Dictionary<string, object> { ["queued_jobs"] = queued, ["max_queued_jobs"] = max };
        return Task.FromResult(queued < max
            ? HealthCheckResult.Healthy($"{queued} of {max} queued", data)
            : HealthCheckResult.Unhealthy($"the queue is full ({queued} of {max} queued)", data: data));
    }
}

public static class HealthEndpoints
{
    public const string ReadyTag = "ready";

    public static IHealthChecksBuilder AddReadinessChecks(this IServiceCollection services) => services.AddHealthChecks()
        .AddCheck<ModelReadiness>("model", tags: [ReadyTag])
        .AddCheck<StorageReadiness>("storage", tags: [ReadyTag])
        .AddCheck<QueueReadiness>("queue", tags: [ReadyTag]);

    /// <summary>The longest <c>/readyz?wait=</c> a caller may ask for, in seconds.</summary>
    public const int MaxWaitSeconds = 60;

    /// <summary>
    /// /healthz: the process answers (no check runs). /readyz: every readiness check, 503 with the reasons when one fails;
    /// with <c>?wait=N</c> (0 to <see cref="MaxWaitSeconds"/>) an answer asked for while the model is still loading is
    /// held until loading ends (ready or failed) or N seconds pass, so that a starter or a probe waits for the change
    /// instead of polling.
    /// </summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder routes)
    {
        routes.MapHealthChecks("/healthz", new() { Predicate = _ => false, ResponseWriter = WriteLiveness }).WithTags("Health");
        var readiness = new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(ReadyTag),
            ResultStatusCodes = { [HealthStatus.Degraded] = StatusCodes.Status503ServiceUnavailable },
            ResponseWriter = WriteReadiness,
        };
        // MapHealthChecks's own pipeline with the wait in front of the checks.
        var pipeline = routes.CreateApplicationBuilder()
            .Use(WaitForEngineAsync)
            .UseMiddleware<HealthCheckMiddleware>(Options.Create(readiness))
            .Build();
        routes.Map("/readyz", pipeline).WithDisplayName("Health checks").WithTags("Health");
        return routes;
    }

    private static async Task WaitForEngineAsync(HttpContext http, RequestDelegate next)
    {
        if (http.Request.Query.TryGetValue("wait", out var values))
        {
            if (values.Count != 1 || !int.TryParse(values[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds)
                || seconds > MaxWaitSeconds)
            {
                await Api.Problems.InvalidParameter("wait", $"wait is a whole number of seconds from 0 to {MaxWaitSeconds}.").ExecuteAsync(http);
                return;
            }
            await http.RequestServices.GetRequiredService<EngineHost>().WaitLoadedAsync(TimeSpan.FromSeconds(seconds), http.RequestAborted);
        }
        await next(http);
    }

    private static Task WriteLiveness(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync("""{"status":"ok"}""");
    }

    /// <summary>
    /// {status: ready|not_ready} for everyone; for admins also problem: the first reason, reasons: [...],
    /// checks: {name: {status, description}}, engine, model, tiny, device, memory_plan, queued_jobs, max_queued_jobs.
    /// The details name the GPU, the model, paths and queue depth: nothing an anonymous prober needs.
    /// </summary>
    private static async Task WriteReadiness(HttpContext http, HealthReport report)
    {
        var reasons = report.Entries.Where(e => e.Value.Status != HealthStatus.Healthy)
            .Select(e => $"{e.Key}: {e.Value.Description ?? e.Value.Exception?.Message ?? "failed"}").ToList();
        var status = reasons.Count == 0 ? "ready" : "not_ready";
        http.Response.ContentType = "application/json";
        if (CurrentUser.From(http.User) is not { IsAdmin: true })
        {
            await JsonSerializer.SerializeAsync(http.Response.Body, new Dictionary<string, string> { ["status"] = status }, cancellationToken: http.RequestAborted);
            return;
        }
        var body = new Dictionary<string, object?>
        {
            ["status"] = status,
            ["problem"] = reasons.FirstOrDefault(),
            ["reasons"] = reasons,
            ["checks"] = report.Entries.ToDictionary(e => e.Key, e => new
            {
                status = e.Value.Status == HealthStatus.Healthy ? "ok" : "failed",
                description = e.Value.Description ?? e.Value.Exception?.Message,
            }),
        };
        foreach (var (key, value) in report.Entries.SelectMany(e => e.Value.Data)) body[key] = value;
        await JsonSerializer.SerializeAsync(http.Response.Body, body, cancellationToken: http.RequestAborted);
    }
}
