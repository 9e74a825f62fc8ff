using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Api;
using NewBie.Host.Jobs;
using NewBie.Host.Models;

namespace NewBie.Host.Studio;

/// <summary>What the live validation says about a prompt: the validator's error (XML with line and column) and the token counts.</summary>
public sealed record PromptCheck(string? Error, PromptTokensDto? Tokens, int GemmaWindow, string? Note);

/// <summary>A refused submit as the API would answer it: status, problem code and detail.</summary>
public sealed record SubmitProblem(int Status, string Code, string Detail);

/// <summary>
/// The studio's actions on the server's own paths: the prompt goes through the API's validator and the engine's
/// tokenizers, and a submit through <see cref="JobSubmission"/> exactly like POST /v1/jobs (rate limits, user limits,
/// storage cap, quota), so the page can refuse nothing the API accepts and accept nothing it refuses.
/// </summary>
public sealed class StudioService(
    JobRequestValidator validator,
    JobSubmission submission,
    EngineHost engines,
    JobStore jobs,
    IStudioSettingsStore settings,
    IServiceProvider services,
    IOptions<JsonOptions> json)
{
    /// <summary>Gemma's window, BOS and system prompt included (model-spec §2.1).</summary>
    public const int GemmaWindow = 512;

    public PromptCheck Check(string prompt)
    {
        var (_, _, error) = validator.Validate(new SubmitJobRequest(prompt));
        if (error is not null) return new PromptCheck(error.Detail, null, GemmaWindow, null);
        if (engines.Engine is not { } engine) return new PromptCheck(null, null, GemmaWindow, $"Token counts appear once the model is loaded ({engines.Problem}).");
        var report = engine.Inspect(prompt, "auto");
        return new PromptCheck(null, new PromptTokensDto(report.GemmaTokens, report.GemmaTokensDropped, report.JinaTokens, report.JinaTokensDropped), GemmaWindow, null);
    }

    public StudioSettings SettingsOf(CurrentUser user) => settings.Find(user.Id) ?? new StudioSettings { UserId = user.Id };

    /// <summary>Submits like POST /v1/jobs; on success the parameters become the user's remembered settings.</summary>
    public async Task<(JobRecord? Job, SubmitProblem? Problem)> SubmitAsync(CurrentUser user, SubmitJobRequest request, bool remember)
    {
        if (submission.RateLimit(user) is { } limited) return (null, await ReadProblemAsync(limited));
        var body = JsonSerializer.SerializeToUtf8Bytes(request, json.Value.SerializerOptions);
        var (job, problem) = await submission.SubmitAsync(request, "", body, user, CancellationToken.None);
        if (problem is not null) return (null, await ReadProblemAsync(problem));
        if (remember)
        {
            var p = job!.Params;
            var remembered = StudioSettings.Of(p);
            remembered.UserId = user.Id;
            remembered.Seed = request.Seed;
            settings.Save(remembered);
        }
        return (job, null);
    }

    /// <summary>The same job again: every parameter kept, the seed too unless <paramref name="newSeed"/> (a variation).</summary>
    public Task<(JobRecord? Job, SubmitProblem? Problem)> RunAgainAsync(CurrentUser user, JobRecord job, bool newSeed)
    {
        var p = job.Params;
        var again = StudioSettings.Of(p);
        return SubmitAsync(user, again.Request(p.Prompt, newSeed ? null : p.Seed, p.SystemPrompt), remember: false);
    }

    /// <summary>Tags of the user's latest prompts, most used first.</summary>
    public IReadOnlyList<string> TagsOf(CurrentUser user) =>
        TagSuggestions.FromPrompts(jobs.List(user.Id, null, null, TagSuggestions.PromptsRead).Select(j => j.Params.Prompt));

    /// <summary>
    /// Renders a problem result into memory and reads it back: the page shows the very code and detail the API sends,
    /// whichever path made it (the submission's results carry headers such as Retry-After around the problem).
    /// </summary>
    private async Task<SubmitProblem> ReadProblemAsync(IResult result)
    {
        var context = new DefaultHttpContext { RequestServices = services };
        using var body = new MemoryStream();
        context.Response.Body = body;
        await result.ExecuteAsync(context);
        body.Position = 0;
        var problem = body.Length > 0 ? JsonDocument.Parse(body).RootElement : default;
        string? Text(string name) => problem.ValueKind == JsonValueKind.Object && problem.TryGetProperty(name, out var v) ? v.GetString() : null;
        return new SubmitProblem(context.Response.StatusCode, Text("code") ?? "error", Text("detail") ?? $"Refused with HTTP {context.Response.StatusCode}.");
    }
}
