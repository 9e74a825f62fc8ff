using System.Buffers;
using System.Runtime.CompilerServices;
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
/// differences between successive records the <see cref="JobEventHub"/> queues for the stream, so every stream sees
/// every step and stage in order; a client that stops reading for <see cref="JobEventHub.Subscription.MaxPending"/>
/// changes loses the oldest and gets a <c>dropped</c> {events} event saying how many. Places come from the shared queue
/// state. A step's and the done event's bytes are serialized once per saved record and written as they are to every
/// stream of the job; the writes happen on the streams' own requests, never on the thread that saved the change (the
/// GPU worker's). At most Limits:MaxEventStreamsPerUser streams per user are open at once (429 too_many_streams beyond).
/// </summary>
public static class JobEvents
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);
    private static readonly byte[] KeepAliveFrame = ": keep-alive\n\n"u8.ToArray();

    // Records are never changed after they are saved, so a frame made from one record is the same for every stream.
    private static readonly ConditionalWeakTable<JobRecord, byte[]> StepFrames = [];
    private static readonly ConditionalWeakTable<JobRecord, byte[]> DoneFrames = [];

    public static async Task<IResult> StreamAsync(string id, CurrentUser user, JobStore jobs, QueueView queue, JobEventHub hub,
        IOptions<LimitsOptions> limits, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, HttpContext context, CancellationToken cancellationToken)
    {
        if (jobs.Find(id) is not { } first || !user.CanSee(first)) return Problems.NotFound("job");
        var max = limits.Value.MaxEventStreamsPerUser;
        using var subscription = hub.Subscribe(first, user.Id, max, jobs.Find);
        if (subscription is null)
            return RateLimited.Result(TimeSpan.FromSeconds(Math.Clamp(queue.SecondsUntilNextSlot(), 1, 60)),
                $"You have {max} event streams open, your maximum; close one or poll GET /v1/jobs/{{id}}.", ProblemCodes.TooManyStreams);

        var response = context.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        var writer = new EventWriter(json.Value.SerializerOptions, queue);
        // One PipeWriter.WriteAsync per wake-up writes and flushes in one go; the stream's Write then Flush was two
        // passes through Kestrel's output pipe per event for each of 1,000 streams.
        var body = response.BodyWriter;
        try
        {
            // The headers go out now, whatever the first record says: a client knows at once that its stream is open.
            await body.FlushAsync(cancellationToken);
            var records = new[] { subscription.Initial };
            var dropped = 0;
            while (!cancellationToken.IsCancellationRequested)
            {
                if (dropped > 0)
                    writer.Add("dropped", new { events = dropped, message = $"This stream fell behind and missed {dropped} changes; the events below are the latest." });
                // With no record queued (a wake-up for the queue's move) the place is read again for the latest one.
                foreach (var job in records.Length > 0 ? records : [subscription.Latest])
                    if (writer.Describe(job)) break;
                if (writer.Written.Length > 0)
                {
                    var sent = await body.WriteAsync(writer.Written, cancellationToken);
                    writer.Clear();
                    if (sent.IsCompleted) break;
                }
                if (writer.Done) break;
                // The signal is taken before the queue is looked at: a change queued after the look completes it.
                var changed = subscription.Next;
                (records, dropped) = subscription.TakePending();
                if (records.Length > 0 || dropped > 0) continue;
                // WaitAsync disposes its timer once the change comes; a Task.Delay per wait lived its full 15 s after
                // each wake-up, so with 1,000 streams every step left 1,000 timers (and token registrations) behind.
                await changed.WaitAsync(KeepAlive, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                cancellationToken.ThrowIfCancellationRequested();
                if (!changed.IsCompleted && (await body.WriteAsync(KeepAliveFrame, cancellationToken)).IsCompleted) break;
                (records, dropped) = subscription.TakePending();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        return Results.Empty;
    }

    /// <summary>One stream's memory of what it sent, turning successive records into the events between them.</summary>
    private sealed class EventWriter(JsonSerializerOptions options, QueueView queue)
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(256);
        private int? _lastPosition;
        private GenerationStage? _lastStage;
        private string? _lastWait;
        private int _lastStep = -1;

        public bool Done { get; private set; }

        /// <summary>Adds the events from the last record to <paramref name="job"/>; true once the job finished (nothing follows).</summary>
        public bool Describe(JobRecord job)
        {
            if (Done) return true;
            if (job.Status == JobStatus.Queued)
            {
                var place = queue.PlaceOf(job);
                if (place.Position != _lastPosition)
                {
                    _lastPosition = place.Position;
                    Add("position", new { queue_position = place.Position, eta_seconds = place.EtaSeconds is { } e ? Math.Round(e, 1) : (double?)null });
                }
            }
            if (job is { Status: JobStatus.Running, MemoryWait: { } wait } && _lastWait is null)
            {
                _lastWait = wait;
                Add("stage", new { stage = JobMapping.WaitingForMemory, message = wait });
            }
            // Stages only move forward, so one skipped between two records is still announced, in order.
            while (job.Stage is { } stage && (_lastStage is null || _lastStage < stage))
            {
                _lastStage = _lastStage is null ? GenerationStage.Encoding : _lastStage + 1;
                Add("stage", new { stage = _lastStage.Value.ToString().ToLowerInvariant() });
            }
            if (job.Stage is not null && job.Step != _lastStep && !job.IsFinished)
            {
                _lastStep = job.Step;
                _buffer.Write(StepFrames.GetValue(job, j => Frame("step", new { step = j.Step, steps = j.Steps }, options)));
            }
            if (!job.IsFinished) return false;
            _buffer.Write(DoneFrames.GetValue(job, j => Frame("done", j.ToDto(new QueuePlace(null, 0)), options)));
            Done = true;
            return true;
        }

        public void Add<T>(string name, T data) => _buffer.Write(Frame(name, data, options));

        /// <summary>What was added since the last <see cref="Clear"/>; valid until then.</summary>
        public ReadOnlyMemory<byte> Written => _buffer.WrittenMemory;

        public void Clear() => _buffer.ResetWrittenCount();
    }

    private static byte[] Frame<T>(string name, T data, JsonSerializerOptions options) =>
        Encoding.UTF8.GetBytes(new StringBuilder().Append("event: ").Append(name).Append('\n')
            .Append("data: ").Append(JsonSerializer.Serialize(data, options)).Append("\n\n").ToString());
}
