using NewBie.Host.Accounts;
using NewBie.Host.Api;
using NewBie.Host.Jobs;
using NewBie.Host.Nodes;

namespace NewBie.Host.Admin;

/// <summary>/v1/admin/queue and /v1/admin/jobs/{id}/…: the GPU queue as an admin sees and steers it.</summary>
public static class QueueAdminApi
{
    /// <summary>Problem code of a reorder of a job that is running, finished, or already fetched by the worker.</summary>
    public const string NotQueued = "not_queued";

    public sealed record QueueDto(bool Paused, IReadOnlyList<QueueEntryDto> Jobs);

    /// <summary>
    /// One unfinished job: the running one(s) first, then the waiting ones in claim order (position 1 runs next). Node:
    /// the node running it, by that node's last heartbeat (null while waiting, or until the node's first beat).
    /// </summary>
    public sealed record QueueEntryDto(string Id, string User, string Status, int? Position, string Priority, int Width, int Height,
        int Count, int Steps, double WaitingSeconds, string? Stage, int Step, int TotalSteps, string? Node = null);

    public sealed record PriorityRequest(string? Priority);

    public static RouteGroupBuilder MapQueueAdmin(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/admin").WithTags("Admin").RequireAuthorization(Policies.Admin);
        group.MapGet("/queue", (JobStore jobs, QueueView view, QueueAdmin admin, NodeHeartbeat nodes, TimeProvider time) =>
            TypedResults.Ok(Snapshot(jobs, view, admin, nodes, time)))
            .WithSummary("The running job and the waiting ones in claim order").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/queue/pause", (QueueAdmin admin) =>
        {
            admin.Pause();
            return TypedResults.Ok(new { paused = admin.IsPaused });
        }).WithSummary("Pause the GPU worker: the running job finishes, no new job starts").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/queue/resume", (QueueAdmin admin) =>
        {
            admin.Resume();
            return TypedResults.Ok(new { paused = admin.IsPaused });
        }).WithSummary("Resume the GPU worker").ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        group.MapPost("/jobs/{id}/front", (string id, QueueAdmin admin) => Answer(admin.MoveToFront(id)))
            .WithSummary("Move a waiting job to the front of the queue").Produces(StatusCodes.Status204NoContent).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapPut("/jobs/{id}/priority", (string id, PriorityRequest body, QueueAdmin admin) =>
            (body.Priority == "front" ? JobPriority.Front : JobPriority.Parse(body.Priority ?? "")) is { } priority
                ? Answer(admin.SetPriority(id, priority))
                : Problems.InvalidParameter("priority", "priority must be front, high, normal or low."))
            .WithSummary("Change the priority class of a waiting job").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        return group;
    }

    /// <summary>
    /// The running jobs (from the store: one per node, or two while one ends), each with the node running it, then the
    /// waiting ones from the shared queue state, in claim order: the queue across every node.
    /// </summary>
    public static QueueDto Snapshot(JobStore jobs, QueueView view, QueueAdmin admin, NodeHeartbeat nodes, TimeProvider time)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var runners = nodes.Nodes.Where(n => n.RunningJob is not null && !n.Lost)
            .GroupBy(n => n.RunningJob!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Name, StringComparer.Ordinal);
        var running = jobs.WithStatus(JobStatus.Running)
            .Select(j => new QueueEntryDto(j.Id, j.UserId, JobMapping.StatusName(j.Status), null,
                JobPriority.Name(j.Priority), j.Params.Width, j.Params.Height, j.Params.Count, j.Params.Steps,
                Math.Max(0, ((j.StartedAt ?? now) - j.CreatedAt).TotalSeconds), j.Stage?.ToString(), j.Step, j.Steps, runners.GetValueOrDefault(j.Id)));
        var waiting = view.Current.Waiting
            .Select(w => new QueueEntryDto(w.Id, w.UserId, JobMapping.StatusName(JobStatus.Queued), w.Position,
                JobPriority.Name(w.Priority), w.Params.Width, w.Params.Height, w.Params.Count, w.Params.Steps,
                Math.Max(0, (now - w.CreatedAt).TotalSeconds), null, 0, w.Params.Steps * w.Params.Count));
        return new QueueDto(admin.IsPaused, [.. running, .. waiting]);
    }

    private static IResult Answer(PriorityOutcome outcome) => outcome switch
    {
        PriorityOutcome.Changed => TypedResults.NoContent(),
        PriorityOutcome.NotFound => Problems.NotFound("job"),
        _ => Problems.Create(StatusCodes.Status409Conflict, NotQueued, "Only a job still waiting in the queue can be reordered."),
    };
}
