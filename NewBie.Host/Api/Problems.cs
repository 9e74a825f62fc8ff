namespace NewBie.Host.Api;

/// <summary>Stable machine codes of the API's problem responses (design.md §3).</summary>
public static class ProblemCodes
{
    public const string InvalidPrompt = "invalid_prompt", InvalidParameter = "invalid_parameter", InvalidJson = "invalid_json",
        Unauthorized = "unauthorized", NotFound = "not_found", IdempotencyConflict = "idempotency_conflict",
        QueueFull = "queue_full", ModelNotReady = "model_not_ready", PayloadTooLarge = "payload_too_large",
        NotCancelable = "not_cancelable", Forbidden = "forbidden", RateLimited = "rate_limited",
        UserQueueFull = "user_queue_full", QuotaExceeded = "quota_exceeded",
        InsufficientStorage = "insufficient_storage", RequestTimeout = "request_timeout", BadRequest = "bad_request",
        ServerBusy = "server_busy", StorageCapExceeded = "storage_cap_exceeded", TooManyStreams = "too_many_streams",
        OutputsUnavailable = "outputs_unavailable";
}

/// <summary>RFC 9457 application/problem+json with a <c>code</c> extension (and <c>field</c> for a bad parameter).</summary>
public static class Problems
{
    /// <summary>Retry-After of a 503 outputs_unavailable: the bucket may be back in a minute.</summary>
    public const int OutputsUnavailableRetryAfterSeconds = 60;

    /// <summary>503 outputs_unavailable with Retry-After: the output store (an S3 bucket) does not answer or refuses.</summary>
    public static IResult OutputsUnavailable(Outputs.OutputStoreException e) => new RetryAfter(OutputsUnavailableRetryAfterSeconds,
        Create(StatusCodes.Status503ServiceUnavailable, ProblemCodes.OutputsUnavailable, e.Message));

    private sealed class RetryAfter(int seconds, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }

    public static IResult Create(int status, string code, string detail, string? field = null)
    {
        var extensions = new Dictionary<string, object?> { ["code"] = code };
        if (field is not null) extensions["field"] = field;
        return TypedResults.Problem(detail: detail, statusCode: status, title: Title(code), extensions: extensions);
    }

    public static IResult NotFound(string what) => Create(StatusCodes.Status404NotFound, ProblemCodes.NotFound, $"No {what} with that id.");

    public static IResult InvalidParameter(string field, string detail) => Create(StatusCodes.Status400BadRequest, ProblemCodes.InvalidParameter, detail, field);

    private static string Title(string code) => code switch
    {
        ProblemCodes.InvalidPrompt => "Invalid prompt",
        ProblemCodes.InvalidParameter => "Invalid parameter",
        ProblemCodes.InvalidJson => "Malformed JSON body",
        ProblemCodes.Unauthorized => "Unauthorized",
        ProblemCodes.NotFound => "Not found",
        ProblemCodes.IdempotencyConflict => "Idempotency-Key reused with another body",
        ProblemCodes.QueueFull => "Queue full",
        ProblemCodes.ModelNotReady => "Model not ready",
        ProblemCodes.PayloadTooLarge => "Payload too large",
        ProblemCodes.NotCancelable => "Job already finished",
        ProblemCodes.Forbidden => "Forbidden",
        ProblemCodes.RateLimited => "Too many requests",
        ProblemCodes.UserQueueFull => "Too many queued jobs",
        ProblemCodes.QuotaExceeded => "Daily image quota used up",
        ProblemCodes.InsufficientStorage => "Insufficient storage",
        ProblemCodes.RequestTimeout => "Request body too slow",
        ProblemCodes.BadRequest => "Bad request",
        ProblemCodes.ServerBusy => "Server busy",
        ProblemCodes.StorageCapExceeded => "Storage cap reached",
        ProblemCodes.TooManyStreams => "Too many open event streams",
        ProblemCodes.OutputsUnavailable => "Output store unavailable",
        _ => code,
    };
}
