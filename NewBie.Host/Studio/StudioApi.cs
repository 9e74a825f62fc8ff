using System.IO.Compression;
using NewBie.Host.Accounts;
using NewBie.Host.Api;
using NewBie.Host.Outputs;

namespace NewBie.Host.Studio;

/// <summary>/v1/me/…: the caller's own usage and history (what the studio's usage and gallery pages show and do).</summary>
public static class StudioApi
{
    /// <summary>Problem code of deleting a job that is still queued or running (cancel it first).</summary>
    public const string NotFinished = "job_not_finished";

    public sealed record DeletedDto(int DeletedJobs);

    public static RouteGroupBuilder MapStudioApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/me").WithTags("Studio").RequireAuthorization(Policies.User);
        group.MapGet("/usage", async (CurrentUser user, History history, CancellationToken cancellationToken) => TypedResults.Ok(await history.UsageAsync(user, cancellationToken)))
            .WithSummary("Images today against the daily quota, and storage used against the storage cap")
            .ProducesProblem(StatusCodes.Status401Unauthorized);
        // Deleting everything must be asked for by name: a client that builds /history/{id} with an empty id reaches
        // this route too (the fuzz run found it), and must not lose the whole history for it.
        group.MapDelete("/history", async (string? confirm, CurrentUser user, History history, CancellationToken cancellationToken) => confirm == "all"
                ? Results.Ok(new DeletedDto(await history.DeleteAllAsync(user, cancellationToken)))
                : Problems.InvalidParameter("confirm", "Deleting the whole history needs ?confirm=all."))
            .WithSummary("Delete all of the caller's finished jobs and their images (unfinished jobs go on); needs ?confirm=all")
            .Produces<DeletedDto>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized);
        group.MapDelete("/history/{id}", async (string id, CurrentUser user, History history, CancellationToken cancellationToken) =>
                Answer(await history.DeleteJobAsync(user, id, cancellationToken)))
            .WithSummary("Delete one finished job and its images").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapDelete("/history/{id}/images/{n:int}", async (string id, int n, CurrentUser user, History history, CancellationToken cancellationToken) =>
                Answer(await history.DeleteImageAsync(user, id, n, cancellationToken)))
            .WithSummary("Delete one image of a finished job (the job too when it was its last)").Produces(StatusCodes.Status204NoContent)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("/images.zip", Zip)
            .WithSummary("A zip of the named images, streamed: ?image=JOB for all of a job's images, ?image=JOB/N for one")
            .Produces(StatusCodes.Status200OK, contentType: "application/zip")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status404NotFound);
        return group;
    }

    private static IResult Answer(DeleteOutcome outcome) => outcome switch
    {
        DeleteOutcome.Deleted => TypedResults.NoContent(),
        DeleteOutcome.NotFinished => Problems.Create(StatusCodes.Status409Conflict, NotFinished, "The job is still queued or running; cancel it first."),
        _ => Problems.NotFound("job or image"),
    };

    private static IResult Zip(HttpContext context, CurrentUser user, History history, OutputStore outputs,
        [Microsoft.AspNetCore.Mvc.FromQuery(Name = "image")] string[]? images)
    {
        if (images is null || images.Length == 0) return Problems.InvalidParameter("image", "Name at least one image: ?image=JOB or ?image=JOB/N.");
        if (images.Length > History.MaxZipImages) return Problems.InvalidParameter("image", $"At most {History.MaxZipImages} images per zip.");
        if (history.Selection(user, images) is not { } selection) return Problems.NotFound("job or image");
        return new ZipResult(outputs, selection);
    }

    /// <summary>
    /// Writes the zip straight to the response, one entry at a time: memory stays flat however many images. PNGs are
    /// already compressed, so the entries are stored, not deflated again.
    /// </summary>
    private sealed class ZipResult(OutputStore outputs, IReadOnlyList<(Jobs.JobRecord Job, Jobs.JobImage Image)> images) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.ContentType = "application/zip";
            response.Headers.ContentDisposition = "attachment; filename=\"newbie-images.zip\"";
            var aborted = httpContext.RequestAborted;
            // ZipArchive's async path still writes an entry's closing bytes synchronously on a stream that cannot seek
            // (.NET 10); allowed for this response only.
            if (httpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpBodyControlFeature>() is { } body) body.AllowSynchronousIO = true;
            await using var zip = await ZipArchive.CreateAsync(response.Body, ZipArchiveMode.Create, leaveOpen: true, entryNameEncoding: null, aborted);
            foreach (var (job, image) in images)
            {
                // An image deleted since the selection was checked is left out rather than ending the download broken.
                if (await outputs.OpenAsync(job, image, aborted) is not { } png) continue;
                await using var source = png.Content;
                var entry = zip.CreateEntry(History.FileName(job, image), CompressionLevel.NoCompression);
                entry.LastWriteTime = png.LastModified;
                await using var target = await entry.OpenAsync(aborted);
                await source.CopyToAsync(target, aborted);
            }
        }
    }
}
