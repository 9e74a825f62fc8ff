using NewBie.Host.Jobs;

using NewBie.Host.Accounts;

namespace NewBie.Host.Api;

/// <summary>The seed article's contract, kept for its scripts: POST /generate {prompt} → {task_id, status_url}; GET /status/{id}.</summary>
public static class SeedApi
{
    public sealed record TaskDto(string TaskId, string StatusUrl);

    public sealed record TaskStatusDto(string TaskId, string Status, ProgressDto? Progress, IReadOnlyList<string> Images, ErrorDto? Error);

    public static RouteGroupBuilder MapSeedContract(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("").WithTags("Seed contract").RequireAuthorization(Policies.User);
        group.MapPost("/generate", Generate).WithSummary("Submit a job (seed contract; same body as POST /v1/jobs)")
            .Accepts<SubmitJobRequest>("application/json")
            .Produces<TaskDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable).ProducesProblem(StatusCodes.Status507InsufficientStorage);
        group.MapGet("/status/{id}", Status).WithSummary("A task's status (seed contract)")
            .Produces<TaskStatusDto>().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound);
        return group;
    }

    private static async Task<IResult> Generate(HttpRequest request, CurrentUser user, JobSubmission submission, CancellationToken cancellationToken)
    {
        var (job, problem) = await submission.SubmitAsync(request, user, cancellationToken);
        if (problem is not null) return problem;
        return TypedResults.Accepted($"/status/{job!.Id}", new TaskDto(job.Id, $"/status/{job.Id}"));
    }

    private static IResult Status(string id, CurrentUser user, JobStore jobs, QueueView queue)
    {
        if (jobs.Find(id) is not { } job || !user.CanSee(job)) return Problems.NotFound("task");
        var dto = job.ToDto(queue.PlaceOf(job));
        return TypedResults.Ok(new TaskStatusDto(job.Id, dto.Status, dto.Progress, dto.Images.Select(i => i.Url).ToList(), dto.Error));
    }
}
