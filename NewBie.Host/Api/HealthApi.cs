using NewBie.Host.Jobs;
using NewBie.Host.Models;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Api;

public static class HealthApi
{
    public sealed record LivenessDto(string Status);

    public sealed record ReadinessDto(string Status, string Engine, string? Model, bool? Tiny, string? Problem, int QueuedJobs, int MaxQueuedJobs);

    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/healthz", () => TypedResults.Ok(new LivenessDto("ok"))).WithTags("Health").WithSummary("Liveness: the process answers");
        routes.MapGet("/readyz", Ready).WithTags("Health").WithSummary("Readiness: a model is loaded and the queue has room")
            .Produces<ReadinessDto>().Produces<ReadinessDto>(StatusCodes.Status503ServiceUnavailable);
        return routes;
    }

    /// <summary>200 once a model is loaded and the queue has room; 503 otherwise, saying why.</summary>
    private static IResult Ready(EngineHost engines, JobStore jobs, IOptions<JobsOptions> options)
    {
        var queued = jobs.CountQueued();
        var max = options.Value.MaxQueuedJobs;
        var problem = engines.State != EngineState.Ready ? engines.Problem : queued >= max ? "the queue is full" : null;
        var model = engines.Engine?.Model;
        var dto = new ReadinessDto(problem is null ? "ready" : "not_ready", engines.State.ToString().ToLowerInvariant(),
            model?.Id ?? engines.Choice?.Id, model?.IsTiny ?? engines.Choice?.IsTiny, problem, queued, max);
        return problem is null ? TypedResults.Ok(dto) : TypedResults.Json(dto, statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}
