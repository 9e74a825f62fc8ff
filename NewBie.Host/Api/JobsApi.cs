using NewBie.Host.Jobs;
using NewBie.Host.Outputs;

using NewBie.Host.Accounts;

namespace NewBie.Host.Api;

public static class JobsApi
{
    public const int DefaultPageSize = 20, MaxPageSize = 100;

    public static RouteGroupBuilder MapJobs(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/jobs").WithTags("Jobs").RequireAuthorization(Policies.User);
        group.MapPost("/", Submit).WithSummary("Submit a generation job")
            .WithDescription("Validates, stores and queues the job. An Idempotency-Key header makes a retried submit answer the same job.")
            .Accepts<SubmitJobRequest>("application/json")
            .Produces<SubmittedDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status403Forbidden).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable).ProducesProblem(StatusCodes.Status507InsufficientStorage);
        group.MapGet("/", List).WithSummary("The caller's jobs, newest first (admins: ?user=NAME for anyone's, ?user=* for all)")
            .Produces<JobPageDto>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized);
        group.MapGet("/{id}", Get).WithSummary("A job's status, progress, parameters, images and error")
            .Produces<JobDto>().ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapDelete("/{id}", Cancel).WithSummary("Cancel a queued or running job")
            .WithDescription("200: canceled at once (it was queued); 202: a running job stops before its next step.")
            .Produces<JobDto>().Produces<JobDto>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/{id}/events", JobEvents.StreamAsync).WithSummary("Server-sent events: position, stage, step, done")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound);
        group.MapGet("/{id}/images/{n:int}", Image).WithSummary("One image of a finished job (PNG); ?size=thumb for its thumbnail, ?download=true to save it")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound);
        return group;
    }

    private static async Task<IResult> Submit(HttpRequest request, CurrentUser user, JobSubmission submission, QueueView queue, CancellationToken cancellationToken)
    {
        var (job, problem) = await submission.SubmitAsync(request, user, cancellationToken);
        if (problem is not null) return problem;
        return TypedResults.Accepted(JobMapping.JobUrl(job!.Id), job.ToSubmitted(queue.PlaceOf(job)));
    }

    private static IResult Get(string id, CurrentUser user, JobStore jobs, QueueView queue) =>
        jobs.Find(id) is { } job && user.CanSee(job) ? TypedResults.Ok(job.ToDto(queue.PlaceOf(job))) : Problems.NotFound("job");

    private static IResult List(CurrentUser user, JobStore jobs, QueueView queue, string? status, int? limit, string? cursor, [Microsoft.AspNetCore.Mvc.FromQuery(Name = "user")] string? owner)
    {
        if (owner is not null && !user.IsAdmin)
            return Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden, "Only admins may list other users' jobs.", "user");
        JobStatus? wanted = null;
        if (status is not null)
        {
            if (!Enum.TryParse<JobStatus>(status, ignoreCase: true, out var parsed) || !status.All(char.IsLower))
                return Problems.InvalidParameter("status", "status must be queued, running, succeeded, failed, canceled or expired.");
            wanted = parsed;
        }
        var size = limit ?? DefaultPageSize;
        if (size < 1 || size > MaxPageSize) return Problems.InvalidParameter("limit", $"limit must be 1-{MaxPageSize}.");
        long? before = null;
        if (cursor is not null)
        {
            if (!long.TryParse(cursor, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seq))
                return Problems.InvalidParameter("cursor", "cursor must be a next_cursor from an earlier page.");
            before = seq;
        }
        var page = jobs.List(owner switch { null => user.Id, "*" => null, _ => owner }, wanted, before, size + 1);
        var state = queue.Current;
        var items = page.Take(size).Select(j => j.ToDto(queue.PlaceOf(j, state))).ToList();
        var next = page.Count > size ? page[size - 1].Seq.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
        return TypedResults.Ok(new JobPageDto(items, next));
    }

    private static IResult Cancel(string id, CurrentUser user, JobStore jobs, JobQueue queue, QueueView view)
    {
        if (jobs.Find(id) is not { } job || !user.CanSee(job)) return Problems.NotFound("job");
        var outcome = queue.Cancel(id);
        if (outcome == CancelOutcome.AlreadyFinished)
            return Problems.Create(StatusCodes.Status409Conflict, ProblemCodes.NotCancelable, $"The job is already {JobMapping.StatusName(job.Status)}.");
        job = jobs.Find(id)!;
        var dto = job.ToDto(view.PlaceOf(job));
        // A running job stops before its next step: the cancel is accepted, not yet done.
        return outcome == CancelOutcome.Canceled ? TypedResults.Ok(dto) : TypedResults.Accepted(JobMapping.JobUrl(id), dto);
    }

    private static async Task<IResult> Image(string id, int n, CurrentUser user, JobStore jobs, OutputStore outputs, string? size, bool? download,
        CancellationToken cancellationToken)
    {
        if (size is not (null or "full" or "thumb")) return Problems.InvalidParameter("size", "size must be full or thumb.");
        if (jobs.Find(id) is not { } job || !user.CanSee(job)) return Problems.NotFound("job");
        if (job.Images.FirstOrDefault(i => i.Index == n) is not { } image) return Problems.NotFound("image");
        if (size == "thumb")
        {
            if (await outputs.OpenThumbnailAsync(job, image, cancellationToken) is not { } thumbnail) return Problems.NotFound("image");
            return TypedResults.Stream(thumbnail.Content, "image/png", lastModified: thumbnail.LastModified);
        }
        if (await outputs.OpenAsync(job, image, cancellationToken) is not { } png) return Problems.NotFound("image");
        // The PNG as written, with its parameters in the text chunks; a download gets a file name that says which image it is.
        return TypedResults.Stream(png.Content, "image/png", fileDownloadName: download == true ? Studio.History.FileName(job, image) : null,
            lastModified: png.LastModified);
    }
}
