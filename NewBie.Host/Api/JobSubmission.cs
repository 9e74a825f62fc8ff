using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;

namespace NewBie.Host.Api;

/// <summary>
/// The submit path shared by POST /v1/jobs and the seed contract's POST /generate: bounded body read, JSON,
/// rate limits, validation, the user's own limits and priority, token inspection, idempotency, daily quota, queue caps,
/// then the durable record and its Hangfire job.
/// </summary>
public sealed class JobSubmission(
    JobRequestValidator validator,
    JobQueue queue,
    QueueView queueView,
    EngineHost engines,
    IWebhookSecretStore webhookSecrets,
    AccountStore accounts,
    StorageSpace storage,
    OutputStore outputs,
    JobStore jobs,
    Limits rateLimits,
    IOptions<LimitsOptions> limits,
    IOptions<JobsOptions> jobsOptions,
    IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
{
    public const string IdempotencyHeader = "Idempotency-Key";

    /// <summary>The stored job (new, or the earlier one an Idempotency-Key replays), or the problem to answer.</summary>
    public async Task<(JobRecord? Job, IResult? Problem)> SubmitAsync(HttpRequest request, CurrentUser user, CancellationToken cancellationToken)
    {
        if (RateLimit(user) is { } limited) return (null, limited);
        var (body, bodyProblem) = await ReadBodyAsync(request, cancellationToken);
        if (bodyProblem is not null) return (null, bodyProblem);

        SubmitJobRequest? submitted;
        try
        {
            submitted = JsonSerializer.Deserialize<SubmitJobRequest>(body, json.Value.SerializerOptions);
        }
        catch (JsonException e)
        {
            return (null, Problems.Create(StatusCodes.Status400BadRequest, ProblemCodes.InvalidJson, $"The body is not a valid job request: {e.Message}"));
        }
        if (submitted is null) return (null, Problems.Create(StatusCodes.Status400BadRequest, ProblemCodes.InvalidJson, "The body must be a JSON object."));
        return await SubmitAsync(submitted, request.Headers[IdempotencyHeader].ToString(), body, user, cancellationToken);
    }

    /// <summary>The caller's own attempt rate, checked before the body is read; null when the caller may submit.</summary>
    public IResult? RateLimit(CurrentUser user) =>
        // Keyed by API key, so that a user's scripts on separate keys do not starve each other.
        rateLimits.TrySubmit(user.KeyId ?? $"user:{user.Id}") is { } wait
            ? RateLimited.Result(wait, "Too many submissions from this key; retry after the time in Retry-After.")
            : null;

    /// <summary>
    /// The submit path after the body is parsed: validation, token inspection, idempotency (keyed on
    /// <paramref name="body"/>'s hash), queue cap, then the durable record and its Hangfire job.
    /// </summary>
    public async Task<(JobRecord? Job, IResult? Problem)> SubmitAsync(SubmitJobRequest submitted, string key, byte[] body, CurrentUser user,
        CancellationToken cancellationToken)
    {
        var (normalised, priority, error) = validator.Validate(submitted);
        if (error is not null) return (null, error.ToResult());
        var own = accounts.LimitsOf(accounts.FindUser(user.Id));
        if (UserLimitProblem(normalised!, own) is { } limitProblem) return (null, limitProblem);
        var (capProblem, storageCap) = await StorageCapProblemAsync(normalised!, user.Id, own.MaxStorageBytes, cancellationToken);
        if (capProblem is not null) return (null, capProblem);
        if (submitted.Priority is null) priority = own.Priority;
        else if (priority > own.Priority && !user.IsAdmin)
            return (null, Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden,
                $"priority {submitted.Priority} is above your class ({JobPriority.Name(own.Priority)}); an admin grants higher classes.", "priority"));
        var (webhook, webhookProblem) = CheckWebhook(submitted.WebhookUrl, user);
        if (webhookProblem is not null) return (null, webhookProblem);

        if (engines.State == EngineState.Unavailable)
            return (null, Problems.Create(StatusCodes.Status503ServiceUnavailable, ProblemCodes.ModelNotReady, $"No model is loaded: {engines.Problem}"));
        PromptTokens? tokens = null;
        if (engines.Engine is { } engine)
        {
            var report = engine.Inspect(normalised!.Prompt, normalised.SystemPrompt);
            tokens = new PromptTokens
            {
                GemmaTokens = report.GemmaTokens,
                GemmaTokensDropped = report.GemmaTokensDropped,
                JinaTokens = report.JinaTokens,
                JinaTokensDropped = report.JinaTokensDropped,
            };
            if (report.GemmaTokensDropped > 0 && jobsOptions.Value.RejectTruncatedPrompts)
                return (null, Problems.Create(StatusCodes.Status400BadRequest, ProblemCodes.InvalidPrompt,
                    $"The prompt is {report.GemmaTokens} Gemma tokens; {report.GemmaTokensDropped} would be cut.", "prompt"));
        }

        if (key.Length > 200) return (null, Problems.InvalidParameter(IdempotencyHeader, "Idempotency-Key is longer than 200 characters."));
        // After validation (bad input is still 400) and before anything is stored or counted.
        if (storage.Check() is { Low: true } space) return (null, InsufficientStorage(space));
        var draft = new JobRecord
        {
            UserId = user.Id,
            Priority = priority,
            Params = normalised!,
            PromptTokens = tokens,
            Webhook = webhook,
            IdempotencyKey = key.Length == 0 ? null : key,
            RequestHash = key.Length == 0 ? null : Convert.ToHexStringLower(SHA256.HashData(body)),
        };
        // Only valid work reaches the shared admission windows; it is charged there once stored.
        if (rateLimits.CheckAdmission(user.Id) is { } refusal) return (null, AdmissionProblem(refusal));
        SubmitOutcome outcome;
        JobRecord? job;
        try
        {
            // The daily quota is charged with the insert, in its turn among the checks (first), and given back there when
            // the insert refuses the job or replays an earlier one.
            var quota = new QuotaCharge(() => accounts.TryUseImages(user.Id, normalised!.Count, own.ImagesPerDay), () => accounts.ReturnImages(user.Id, normalised!.Count));
            (outcome, job) = await queue.SubmitAsync(draft, own.MaxQueuedJobs, storageCap, quota);
        }
        catch (Exception e) when (DiskFullHandler.IsDiskFull(e))
        {
            UndoOnFullDisk(draft);
            throw;
        }
        if (outcome == SubmitOutcome.Created) rateLimits.Admitted(user.Id);
        return outcome switch
        {
            SubmitOutcome.QuotaExceeded => (null, RateLimited.Result(TimeSpan.FromSeconds(accounts.SecondsUntilQuotaReset()),
                $"The daily quota of {own.ImagesPerDay} images is used up; it resets at 00:00 UTC.", ProblemCodes.QuotaExceeded)),
            SubmitOutcome.UserQueueFull => (null, RateLimited.Result(TimeSpan.FromSeconds(queueView.SecondsUntilNextSlot()),
                $"You have {own.MaxQueuedJobs} queued or running jobs, your maximum; retry when one finishes.", ProblemCodes.UserQueueFull)),
            SubmitOutcome.Created or SubmitOutcome.Replayed => (job, null),
            // Passed the check above, and then another submit of the user's (on this node or another) was inserted first.
            SubmitOutcome.StorageCapExceeded => (null, StorageCapExceeded(
                $"Your images and unfinished jobs, with this job at its largest ({LargestBytes(normalised!)} bytes), would pass your storage cap of " +
                $"{own.MaxStorageBytes} bytes. Delete images you no longer need.")),
            SubmitOutcome.IdempotencyConflict => (null, Problems.Create(StatusCodes.Status409Conflict, ProblemCodes.IdempotencyConflict,
                $"Idempotency-Key '{key}' was used for job {job!.Id} with a different body.")),
            _ => (null, QueueFull()),
        };
    }

    /// <summary>
    /// An absolute http(s) URL, and a secret to sign with. Where it points is checked at delivery, after DNS
    /// resolution: a check here could be undone by the time the job finishes.
    /// </summary>
    private (JobWebhook? Webhook, IResult? Problem) CheckWebhook(string? url, CurrentUser user)
    {
        if (url is null) return (null, null);
        if (url.Length > 2000 || !Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.UserInfo.Length > 0)
            return (null, Problems.InvalidParameter("webhook_url", "webhook_url must be an absolute http or https URL without credentials, at most 2000 characters."));
        if (webhookSecrets.Find(user.Id) is null)
            return (null, Problems.InvalidParameter("webhook_url", "Create a signing secret first: POST /v1/webhook-secret."));
        return (new JobWebhook { Url = uri.AbsoluteUri, State = WebhookState.Pending }, null);
    }

    /// <summary>The per-user bounds (Accounts:Defaults or the user's own), on top of the server-wide ones the validator checked.</summary>
    private static IResult? UserLimitProblem(JobParams p, EffectiveLimits own) =>
        p.Width * p.Height > own.MaxPixels ? Forbidden("width", $"width × height is above your maximum of {own.MaxPixels} pixels.")
        : p.Steps > own.MaxSteps ? Forbidden("steps", $"steps is above your maximum of {own.MaxSteps}.")
        : p.Count > own.MaxCount ? Forbidden("count", $"count is above your maximum of {own.MaxCount}.")
        : null;

    /// <summary>The most bytes a job's images can take: uncompressed RGB plus the metadata, so a PNG never takes more.</summary>
    public static long LargestBytes(JobParams p) => p.LargestBytes;

    /// <summary>
    /// Refuses a job whose images could pass the user's storage cap, counting what is kept on disk and every unfinished
    /// job at its largest: a job accepted here never fails later for want of the user's space. A job that passes is
    /// checked again with the insert (the cap returned), in the queue caps' turn, so that two submits at once cannot both
    /// take the last room.
    /// </summary>
    private async Task<(IResult? Problem, StorageCap? Cap)> StorageCapProblemAsync(JobParams p, string userId, long cap, CancellationToken cancellationToken)
    {
        if (cap <= 0) return (null, null);
        // Counted by the output store as images come and go: no walk of the user's outputs per submit.
        var used = await outputs.BytesUsedByAsync(userId, cancellationToken);
        // Summed by the store as jobs come and go: the check costs the same however many jobs the user has queued.
        var pending = jobs.ActiveImageBytes(userId);
        var needed = LargestBytes(p);
        return used + pending + needed <= cap ? (null, new StorageCap(cap, used))
            : (StorageCapExceeded($"Your images take {used} bytes and your unfinished jobs up to {pending}; this job may add up to {needed}, " +
                $"past your storage cap of {cap} bytes. Delete images you no longer need."), null);
    }

    private static IResult StorageCapExceeded(string detail) => Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.StorageCapExceeded, detail);

    private static IResult Forbidden(string field, string detail) =>
        Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden, detail, field);

    private static IResult AdmissionProblem(AdmissionRefusal refusal) => refusal.Global
        ? new RetryAfterResult(RateLimited.Seconds(refusal.Wait), Problems.Create(StatusCodes.Status503ServiceUnavailable, ProblemCodes.ServerBusy,
            "The server admits no more jobs this instant (Accounts:RateLimits:GlobalPerSecond/GlobalPerHour); retry after the time in Retry-After."))
        : RateLimited.Result(refusal.Wait, "You have used your share of the server's admissions for now; retry after the time in Retry-After.");

    private IResult QueueFull()
    {
        var retryAfter = Math.Clamp((int)Math.Ceiling(queueView.SecondsUntilNextSlot()), 1, 3600);
        return new RetryAfterResult(retryAfter, Problems.Create(StatusCodes.Status503ServiceUnavailable, ProblemCodes.QueueFull,
            $"The queue holds its maximum of {jobsOptions.Value.MaxQueuedJobs} jobs; retry later."));
    }

    /// <summary>
    /// A submit whose write met a full disk is answered 507 (<see cref="DiskFullHandler"/>), so none of it may stay: its
    /// quota charge is undone with the failed write (<see cref="JobQueue.SubmitAsync"/>), and a record stored before the
    /// failure is deleted here. Best effort: the disk may refuse this write too, and the 507 must still be answered.
    /// </summary>
    private void UndoOnFullDisk(JobRecord draft)
    {
        try
        {
            if (draft.Id.Length > 0 && jobs.Find(draft.Id) is not null) jobs.Delete(draft.Id);
        }
        catch (IOException e) when (DiskFullHandler.IsDiskFull(e))
        {
        }
    }

    public const int InsufficientStorageRetryAfterSeconds = 60;

    private static IResult InsufficientStorage(SpaceCheck space) =>
        new RetryAfterResult(InsufficientStorageRetryAfterSeconds, Problems.Create(StatusCodes.Status507InsufficientStorage,
            ProblemCodes.InsufficientStorage, $"The server is out of disk space for new work ({space.Describe()}); retry later."));

    /// <summary>Reads at most MaxBodyBytes: a larger declared or actual body is 413 without reading the rest.</summary>
    public async Task<(byte[] Body, IResult? Problem)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var max = limits.Value.MaxBodyBytes;
        var tooLarge = Problems.Create(StatusCodes.Status413PayloadTooLarge, ProblemCodes.PayloadTooLarge, $"The body is larger than {max} bytes.");
        if (request.ContentLength > max) return ([], tooLarge);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, cancellationToken)) > 0)
        {
            if (buffer.Length + read > max) return ([], tooLarge);
            buffer.Write(chunk, 0, read);
        }
        return (buffer.ToArray(), null);
    }

    private sealed class RetryAfterResult(int seconds, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
