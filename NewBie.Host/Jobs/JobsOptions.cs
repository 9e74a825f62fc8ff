using System.ComponentModel.DataAnnotations;

namespace NewBie.Host.Jobs;

public sealed class JobsOptions
{
    public const string Section = "Jobs";

    /// <summary>Runs of one job (first run included) before a job whose worker keeps dying fails with worker_lost. Default 3.</summary>
    [Range(1, 100)] public int MaxAttempts { get; set; } = 3;

    /// <summary>A job still queued after this long expires. Default 1 day.</summary>
    public TimeSpan MaxQueueWait { get; set; } = TimeSpan.FromDays(1);

    /// <summary>A run longer than this is stopped before its next step and fails with timeout. Default 30 minutes.</summary>
    public TimeSpan MaxRunTime { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Several nodes (Storage:Provider=postgres): a node that has not shown it is alive for this long is lost; the job it
    /// was running is claimed again by another node (attempt + 1), and the node list marks it lost. Nodes heartbeat at a
    /// fifth of it. Default 2 minutes; the embedded mode re-runs a crashed job at restart instead.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")] public TimeSpan NodeTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>After a degraded retry also ran out of GPU memory, the job runs once more after this delay. Default 30 s.</summary>
    public TimeSpan OomRequeueDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often a job waiting for GPU memory checks the free memory again. Default 2 s.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")] public TimeSpan MemoryPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Queued jobs of all users together; beyond it submit answers 503 queue_full. Default 1000.</summary>
    [Range(1, 1_000_000)] public int MaxQueuedJobs { get; set; } = 1000;

    /// <summary>Finished jobs and their images are deleted this many days after they finished. Default 7.</summary>
    [Range(0, 36500)] public double RetentionDays { get; set; } = 7;

    /// <summary>Refuse (400 invalid_prompt) prompts longer than the Gemma window instead of truncating and reporting it. Default false.</summary>
    public bool RejectTruncatedPrompts { get; set; }

    /// <summary>Estimated seconds per megapixel and step until run times of similar jobs have been measured (ETA only). Default 0.5.</summary>
    [Range(0, 1000)] public double DefaultSecondsPerMegapixelStep { get; set; } = 0.5;
}

/// <summary>Bounds on a submitted request (400 invalid_parameter / invalid_prompt, 413 payload_too_large).</summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";

    /// <summary>Largest request body of an authenticated caller, on every route (submits included). Default 64 KiB.</summary>
    [Range(1024, 16 * 1024 * 1024)] public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>Largest request body of a caller not (yet) authenticated, e.g. a login. Default 4 KiB.</summary>
    [Range(256, 16 * 1024 * 1024)] public int MaxAnonymousBodyBytes { get; set; } = 4 * 1024;

    /// <summary>Longest prompt or negative prompt in characters. Default 20000.</summary>
    [Range(1, 1_000_000)] public int MaxPromptChars { get; set; } = 20_000;

    /// <summary>Deepest element nesting of an XML prompt. Default 16.</summary>
    [Range(1, 256)] public int MaxXmlDepth { get; set; } = 16;

    /// <summary>Smallest width or height. Default 256.</summary>
    [Range(16, 16384)] public int MinSide { get; set; } = 256;

    /// <summary>Largest width or height. Default 2048.</summary>
    [Range(16, 16384)] public int MaxSide { get; set; } = 2048;

    /// <summary>Largest width × height. Default 2048 × 2048.</summary>
    [Range(256, 268_435_456)] public int MaxPixels { get; set; } = 2048 * 2048;

    /// <summary>Most denoising steps. Default 100.</summary>
    [Range(1, 1000)] public int MaxSteps { get; set; } = 100;

    /// <summary>Most images per job. Default 4.</summary>
    [Range(1, 64)] public int MaxCount { get; set; } = 4;

    /// <summary>Largest classifier-free guidance scale. Default 30.</summary>
    [Range(0, 1000)] public double MaxGuidance { get; set; } = 30;

    /// <summary>
    /// Most event streams (GET /v1/jobs/{id}/events) one user may hold open at once; beyond it 429 too_many_streams.
    /// Default 100: a studio page per job of a 100-job batch, while one user cannot take the server's connections.
    /// </summary>
    [Range(1, 100_000)] public int MaxEventStreamsPerUser { get; set; } = 100;
}
