using NewBie.Host.Jobs;

namespace NewBie.Host.Api;

/// <summary>The job JSON of design.md §9 (snake_case on the wire).</summary>
public sealed record JobDto(
    string Id,
    string Status,
    int? QueuePosition,
    double? EtaSeconds,
    int Attempts,
    bool Degraded,
    int OomRetries,
    string Priority,
    ProgressDto? Progress,
    ParamsDto Params,
    IReadOnlyList<ImageDto> Images,
    ErrorDto? Error,
    PromptTokensDto? PromptTokens,
    DateTime CreatedAt,
    DateTime? StartedAt,
    DateTime? FinishedAt,
    WebhookDto? Webhook = null);

/// <summary>Stage: encoding, denoising, decoding, or waiting_for_memory (with a message saying what is short).</summary>
public sealed record ProgressDto(string Stage, int Step, int Steps, string? Message = null);

public sealed record ParamsDto(string Prompt, string NegativePrompt, int Width, int Height, int Steps, double Guidance, string Sampler, long Seed, int Count, string SystemPrompt,
    double CfgTrunc, double Renorm, double Shift, string Preset);

public sealed record ImageDto(int Index, string Url, int Width, int Height, long Seed);

public sealed record WebhookDto(string Url, string State, int Attempts, int? LastStatus, string? LastError);

public sealed record ErrorDto(string Code, string Message);

public sealed record PromptTokensDto(int GemmaTokens, int GemmaTokensDropped, int JinaTokens, int JinaTokensDropped);

public sealed record SubmittedDto(string Id, string Status, int? QueuePosition, double? EtaSeconds, string StatusUrl, string EventsUrl);

public sealed record JobPageDto(IReadOnlyList<JobDto> Items, string? NextCursor);

public static class JobMapping
{
    public static string StatusName(JobStatus status) => status.ToString().ToLowerInvariant();

    public static string JobUrl(string id) => $"/v1/jobs/{id}";

    public static JobDto ToDto(this JobRecord job, QueuePlace place) => new(
        job.Id,
        StatusName(job.Status),
        place.Position,
        place.EtaSeconds is { } eta ? Math.Round(eta, 1) : null,
        job.Attempts,
        job.Degraded,
        job.OomRetries,
        JobPriority.Name(job.Priority),
        Progress(job),
        new ParamsDto(job.Params.Prompt, job.Params.NegativePrompt, job.Params.Width, job.Params.Height, job.Params.Steps,
            job.Params.Guidance, job.Params.Sampler.ToString().ToLowerInvariant(), job.Params.Seed, job.Params.Count, job.Params.SystemPrompt,
            job.Params.CfgTrunc, job.Params.RenormCfg, job.Params.Shift, job.Params.Preset),
        job.Images.Select(i => new ImageDto(i.Index, $"{JobUrl(job.Id)}/images/{i.Index}", i.Width, i.Height, i.Seed)).ToList(),
        job.Error is { } error ? new ErrorDto(error.Code, error.Message) : null,
        job.PromptTokens is { } t ? new PromptTokensDto(t.GemmaTokens, t.GemmaTokensDropped, t.JinaTokens, t.JinaTokensDropped) : null,
        job.CreatedAt,
        job.StartedAt,
        job.FinishedAt,
        job.Webhook is { } w ? new WebhookDto(w.Url, w.State.ToString().ToLowerInvariant(), w.Attempts, w.LastStatus, w.LastError) : null);

    public const string WaitingForMemory = "waiting_for_memory";

    private static ProgressDto? Progress(JobRecord job) =>
        job is { Status: JobStatus.Running, MemoryWait: { } wait } ? new ProgressDto(WaitingForMemory, 0, job.Steps, wait)
        : job.Stage is { } stage ? new ProgressDto(stage.ToString().ToLowerInvariant(), job.Step, job.Steps)
        : null;

    public static SubmittedDto ToSubmitted(this JobRecord job, QueuePlace place) => new(
        job.Id, StatusName(job.Status), place.Position, place.EtaSeconds is { } eta ? Math.Round(eta, 1) : null,
        JobUrl(job.Id), $"{JobUrl(job.Id)}/events");
}
