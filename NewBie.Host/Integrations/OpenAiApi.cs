using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.HttpResults;
using NewBie.Host.Accounts;
using NewBie.Host.Api;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;

namespace NewBie.Host.Integrations;

/// <summary>
/// Body of POST /v1/images/generations, as the OpenAI images API names it (<c>model</c> and <c>user</c> are accepted and
/// not used), plus the job API's <c>negative_prompt</c>, <c>steps</c>, <c>seed</c>, <c>guidance</c>, <c>sampler</c>,
/// <c>cfg_trunc</c>, <c>renorm</c>, <c>shift</c> and <c>preset</c> for clients that can send them (OpenAI SDKs: extra body fields).
/// </summary>
public sealed record OpenAiImageRequest(
    [property: JsonPropertyName("prompt")] string? Prompt,
    [property: JsonPropertyName("n")] int? N = null,
    [property: JsonPropertyName("size")] string? Size = null,
    [property: JsonPropertyName("response_format")] string? ResponseFormat = null,
    [property: JsonPropertyName("user")] string? User = null,
    [property: JsonPropertyName("model")] string? Model = null,
    [property: JsonPropertyName("negative_prompt")] string? NegativePrompt = null,
    [property: JsonPropertyName("steps")] int? Steps = null,
    [property: JsonPropertyName("seed")] long? Seed = null,
    [property: JsonPropertyName("guidance")] double? Guidance = null,
    [property: JsonPropertyName("sampler")] string? Sampler = null,
    [property: JsonPropertyName("cfg_trunc")] double? CfgTrunc = null,
    [property: JsonPropertyName("renorm")] double? Renorm = null,
    [property: JsonPropertyName("shift")] double? Shift = null,
    [property: JsonPropertyName("preset")] string? Preset = null);

public sealed record OpenAiImage(
    [property: JsonPropertyName("b64_json"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? B64Json,
    [property: JsonPropertyName("url"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Url);

public sealed record OpenAiImagesResponse([property: JsonPropertyName("created")] long Created, [property: JsonPropertyName("data")] IReadOnlyList<OpenAiImage> Data);

public sealed record OpenAiError(
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("param")] string? Param,
    [property: JsonPropertyName("code")] string? Code);

public sealed record OpenAiErrorResponse([property: JsonPropertyName("error")] OpenAiError Error);

/// <summary>
/// POST /v1/images/generations, compatible with OpenAI's images API: the request becomes an ordinary job (same
/// validation, fairness and limits) and the answer waits until it is done. A client that goes away before then
/// cancels its job, so no result is left that nobody will fetch.
/// </summary>
public static class OpenAiApi
{
    public const string DefaultSize = "1024x1024";

    public static RouteHandlerBuilder MapOpenAiImages(this IEndpointRouteBuilder routes) =>
        routes.MapPost("/v1/images/generations", GenerateAsync)
            .RequireAuthorization(Policies.User)
            .WithTags("OpenAI compatible")
            .WithSummary("Generate images (OpenAI images API); answers when the job is done")
            .WithDescription("prompt, n (1 to Limits:MaxCount), size \"WxH\" (multiples of 16), response_format b64_json (default) or url (absolute under Server:PublicBaseUrl, else relative); NewBie extensions negative_prompt, steps, seed, guidance, sampler, cfg_trunc, renorm, shift, preset (as in POST /v1/jobs). Errors use OpenAI's {error: {message, type, param, code}} shape.")
            .Accepts<OpenAiImageRequest>("application/json")
            .Produces<OpenAiImagesResponse>()
            .Produces<OpenAiErrorResponse>(StatusCodes.Status400BadRequest)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status409Conflict)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status500InternalServerError)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status503ServiceUnavailable)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status507InsufficientStorage);

    private static async Task<IResult> GenerateAsync(HttpContext http, CurrentUser user, JobSubmission submission, JobStore jobs, JobQueue queue, OutputStore outputs, TimeProvider time,
        Microsoft.Extensions.Options.IOptions<ServerOptions> server)
    {
        var aborted = http.RequestAborted;
        if (submission.RateLimit(user) is { } limited) return limited;
        var (body, bodyProblem) = await submission.ReadBodyAsync(http.Request, aborted);
        if (bodyProblem is not null) return FromProblem(bodyProblem);
        OpenAiImageRequest? request;
        try
        {
            request = JsonSerializer.Deserialize<OpenAiImageRequest>(body);
        }
        catch (JsonException e)
        {
            return Error(StatusCodes.Status400BadRequest, $"The body is not valid JSON: {e.Message}", null, "invalid_json");
        }
        if (request is null) return Error(StatusCodes.Status400BadRequest, "The body must be a JSON object.", null, "invalid_json");
        if (ParseSize(request.Size ?? DefaultSize) is not var (width, height))
            return Error(StatusCodes.Status400BadRequest, "size must be WIDTHxHEIGHT, e.g. 1024x1024.", "size", "invalid_parameter");
        var format = request.ResponseFormat ?? "b64_json";
        if (format is not ("b64_json" or "url"))
            return Error(StatusCodes.Status400BadRequest, "response_format must be b64_json or url.", "response_format", "invalid_parameter");
        if (request.User is { Length: > 256 })
            return Error(StatusCodes.Status400BadRequest, "user is longer than 256 characters.", "user", "invalid_parameter");

        var (job, problem) = await submission.SubmitAsync(new SubmitJobRequest(request.Prompt, NegativePrompt: request.NegativePrompt, Width: width, Height: height, Steps: request.Steps,
            Guidance: request.Guidance, Sampler: request.Sampler, Seed: request.Seed, Count: request.N ?? 1,
            CfgTrunc: request.CfgTrunc, Renorm: request.Renorm, Shift: request.Shift, Preset: request.Preset), "", body, user, aborted);
        if (problem is not null) return FromProblem(problem);

        try
        {
            while (true)
            {
                var changed = jobs.NextChange;
                job = jobs.Find(job!.Id)!;
                if (job.IsFinished) break;
                await changed.WaitAsync(aborted);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            queue.Cancel(job!.Id);
            return Results.Empty;
        }

        return job.Status switch
        {
            JobStatus.Succeeded => TypedResults.Ok(new OpenAiImagesResponse(
                time.GetUtcNow().ToUnixTimeSeconds(),
                await Task.WhenAll(job.Images.OrderBy(i => i.Index).Select(async i => format == "b64_json"
                    ? new OpenAiImage(Convert.ToBase64String(await ReadAsync(outputs, job, i, aborted)), null)
                    : new OpenAiImage(null, server.Value.Url($"{JobMapping.JobUrl(job.Id)}/images/{i.Index}")))))),
            JobStatus.Failed => Error(StatusCodes.Status500InternalServerError, job.Error?.Message ?? "The job failed.", null, job.Error?.Code, "server_error"),
            JobStatus.Expired => Error(StatusCodes.Status503ServiceUnavailable, "The job waited in the queue longer than the server allows.", null, "expired", "server_error"),
            _ => Error(StatusCodes.Status409Conflict, "The job was canceled.", null, "canceled"),
        };
    }

    private static async Task<byte[]> ReadAsync(OutputStore outputs, JobRecord job, JobImage image, CancellationToken cancellationToken)
    {
        var png = await outputs.OpenAsync(job, image, cancellationToken)
            ?? throw new InvalidOperationException($"Image {image.Index} of job {job.Id} is missing from the outputs.");
        await using var content = png.Content;
        using var buffer = new MemoryStream();
        await content.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    private static (int Width, int Height)? ParseSize(string size) =>
        size.Split('x') is [var w, var h]
        && int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out var width)
        && int.TryParse(h, NumberStyles.None, CultureInfo.InvariantCulture, out var height)
            ? (width, height) : null;

    private static JsonHttpResult<OpenAiErrorResponse> Error(int status, string message, string? param, string? code, string type = "invalid_request_error") =>
        TypedResults.Json(new OpenAiErrorResponse(new OpenAiError(message, type, param, code)), statusCode: status);

    /// <summary>The job API's problem (validation, limits, queue full) in OpenAI's error shape; other results pass as they are.</summary>
    private static IResult FromProblem(IResult problem)
    {
        if (problem is not ProblemHttpResult { ProblemDetails: var details } p) return problem;
        var code = details.Extensions.TryGetValue("code", out var c) ? c?.ToString() : null;
        var field = details.Extensions.TryGetValue("field", out var f) ? f?.ToString() : null;
        // The job API's field names for what OpenAI calls n and size.
        field = field switch { "count" => "n", "width" or "height" => "size", _ => field };
        var type = p.StatusCode >= 500 ? "server_error" : "invalid_request_error";
        return Error(p.StatusCode, details.Detail ?? details.Title ?? "The request was refused.", field, code, type);
    }
}
