using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Jobs;
using NewBie.Pipeline;

namespace NewBie.Host.Api;

/// <summary>
/// GET /v1/jobs/{id}/events: text/event-stream of <c>position</c> {queue_position, eta_seconds}, <c>stage</c> {stage},
/// <c>step</c> {step, steps} and a final <c>done</c> (the job JSON), after which the stream ends. Events are the
/// differences between successive records the <see cref="JobEventHub"/> pushes, so a slow reader sees the latest
/// step rather than a backlog (but every stage, in order); places come from the shared queue state. At most
/// Limits:MaxEventStreamsPerUser streams per user are open at once (429 too_many_streams beyond).
/// </summary>
public static class JobEvents
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public static async Task<IResult> StreamAsync(string id, CurrentUser user, JobStore jobs, QueueView queue, JobEventHub hub,
        IOptions<LimitsOptions> limits, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, HttpContext context, CancellationToken cancellationToken)
    {
        if (jobs.Find(id) is not { } first || !user.CanSee(first)) return Problems.NotFound("job");
        var max = limits.Value.MaxEventStreamsPerUser;
        using var subscription = hub.Subscribe(first, user.Id, max);
        if (subscription is null)
            return RateLimited.Result(TimeSpan.FromSeconds(Math.Clamp(queue.SecondsUntilNextSlot(), 1, 60)),
                $"You have {max} event streams open, your maximum; close one or poll GET /v1/jobs/{{id}}.", ProblemCodes.TooManyStreams);

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var options = json.Value.SerializerOptions;

        int? lastPosition = null;
        GenerationStage? lastStage = null;
        string? lastWait = null;
        var lastStep = -1;
        // A change saved between the first read and the subscription would otherwise be missed.
        var job = jobs.Find(id) ?? first;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var changed = subscription.Next;
                var latest = subscription.Latest;
                if (!ReferenceEquals(latest, first)) job = latest;
                var place = queue.PlaceOf(job);
                if (job.Status == JobStatus.Queued && place.Position != lastPosition)
                {
                    lastPosition = place.Position;
                    await SendAsync(response, "position", new { queue_position = place.Position, eta_seconds = place.EtaSeconds is { } e ? Math.Round(e, 1) : (double?)null }, options, cancellationToken);
                }
                if (job is { Status: JobStatus.Running, MemoryWait: { } wait } && lastWait is null)
                {
                    lastWait = wait;
                    await SendAsync(response, "stage", new { stage = JobMapping.WaitingForMemory, message = wait }, options, cancellationToken);
                }
                // Stages only move forward, so one skipped between two reads is still announced, in order.
                while (job.Stage is { } stage && (lastStage is null || lastStage < stage))
                {
                    lastStage = lastStage is null ? GenerationStage.Encoding : lastStage + 1;
                    await SendAsync(response, "stage", new { stage = lastStage.Value.ToString().ToLowerInvariant() }, options, cancellationToken);
                }
                if (job.Stage is not null && job.Step != lastStep && !job.IsFinished)
                {
                    lastStep = job.Step;
                    await SendAsync(response, "step", new { step = job.Step, steps = job.Steps }, options, cancellationToken);
                }
                if (job.IsFinished)
                {
                    await SendAsync(response, "done", job.ToDto(place), options, cancellationToken);
                    break;
                }
                if (await Task.WhenAny(changed, Task.Delay(KeepAlive, cancellationToken)) != changed)
                {
                    await response.WriteAsync(": keep-alive\n\n", cancellationToken);
                    await response.Body.FlushAsync(cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        return Results.Empty;
    }

    private static async Task SendAsync<T>(HttpResponse response, string name, T data, JsonSerializerOptions options, CancellationToken cancellationToken)
    {
        var text = new StringBuilder().Append("event: ").Append(name).Append('\n')
            .Append("data: ").Append(JsonSerializer.Serialize(data, options)).Append("\n\n").ToString();
        await response.WriteAsync(text, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }
}
