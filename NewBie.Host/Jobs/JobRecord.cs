using LiteDB;
using NewBie.Pipeline;

namespace NewBie.Host.Jobs;

public enum JobStatus { Queued, Running, Succeeded, Failed, Canceled, Expired }

/// <summary>Priority classes as the fair queue orders them: higher runs first. Front is only set by an admin (move to front).</summary>
public static class JobPriority
{
    public const int Low = 0, Normal = 1, High = 2, Front = 3;

    public static int? Parse(string? name) => name switch
    {
        null or "normal" => Normal,
        "low" => Low,
        "high" => High,
        _ => null,
    };

    public static string Name(int priority) => priority switch { Low => "low", High => "high", Front => "front", _ => "normal" };
}

/// <summary>One generation job as stored in the app database (never sent as is: see JobDto).</summary>
public sealed class JobRecord
{
    [BsonId] public string Id { get; set; } = "";
    public string UserId { get; set; } = "";
    /// <summary>Submit order, unique and increasing; the fair queue's FIFO key within a user.</summary>
    public long Seq { get; set; }
    public JobStatus Status { get; set; }
    public int Priority { get; set; } = JobPriority.Normal;
    public JobParams Params { get; set; } = new();
    public int Attempts { get; set; }
    /// <summary>The job ran out of GPU memory and runs degraded (tiled VAE decode) from then on.</summary>
    public bool Degraded { get; set; }
    /// <summary>Out-of-memory recoveries so far: the degraded retry and the one delayed re-queue.</summary>
    public int OomRetries { get; set; }
    public bool OomRequeued { get; set; }
    public string? HangfireJobId { get; set; }
    public string? IdempotencyKey { get; set; }
    public string? RequestHash { get; set; }
    public bool CancelRequested { get; set; }
    public GenerationStage? Stage { get; set; }
    /// <summary>Why a claimed job has not started yet: the free GPU memory does not cover its estimate. Null otherwise.</summary>
    public string? MemoryWait { get; set; }
    public int Step { get; set; }
    public int Steps { get; set; }
    public List<JobImage> Images { get; set; } = [];
    public JobError? Error { get; set; }
    public PromptTokens? PromptTokens { get; set; }
    public JobWebhook? Webhook { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }

    [BsonIgnore] public bool IsFinished => Status is not (JobStatus.Queued or JobStatus.Running);

    // The state machine: every change of Status goes through one of these, wherever it is decided (worker, API,
    // maintenance, admin, Hangfire filter). Each returns whether it changed the record, for JobStore.Update.

    /// <summary>
    /// The worker claimed the job: running, waiting for GPU memory when <paramref name="memoryWait"/> says why; one more
    /// attempt, counted in the write that says running (which precedes anything a crash could come from) instead of a
    /// write of its own on the worker's path between two jobs.
    /// </summary>
    public bool Start(DateTime now, string? memoryWait)
    {
        if (IsFinished || CancelRequested) return false;
        Attempts++;
        Status = JobStatus.Running;
        StartedAt = now;
        Stage = memoryWait is null ? GenerationStage.Encoding : null;
        MemoryWait = memoryWait;
        Step = 0;
        Steps = Params.Steps * Params.Count;
        Images = [];
        Error = null;
        return true;
    }

    /// <summary>Still running, but waiting for GPU memory (no stage yet).</summary>
    public bool WaitForMemory(string message)
    {
        if (Status != JobStatus.Running) return false;
        MemoryWait = message;
        Stage = null;
        return true;
    }

    /// <summary>Memory is free: the run starts now, and so does its clock.</summary>
    public bool Admit(DateTime now)
    {
        if (Status != JobStatus.Running) return false;
        MemoryWait = null;
        Stage = GenerationStage.Encoding;
        StartedAt = now;
        return true;
    }

    public bool Report(GenerationStage stage, int step, int steps)
    {
        if (Status != JobStatus.Running) return false;
        Stage = stage;
        Step = step;
        Steps = steps;
        return true;
    }

    /// <summary>From now on the job runs degraded (tiled VAE decode); <paramref name="afterOutOfMemory"/> counts it as a recovery.</summary>
    public bool Degrade(bool afterOutOfMemory)
    {
        if (IsFinished) return false;
        Degraded = true;
        if (afterOutOfMemory) OomRetries++;
        return true;
    }

    public bool Succeed(List<JobImage> images, DateTime now)
    {
        if (IsFinished) return false;
        Status = JobStatus.Succeeded;
        Images = images;
        Step = Steps;
        FinishedAt = now;
        return true;
    }

    public bool Fail(JobError error, DateTime now) => End(JobStatus.Failed, error, now);

    /// <summary>A running job that was asked to stop has stopped.</summary>
    public bool EndCanceled(DateTime now) => End(JobStatus.Canceled, null, now);

    /// <summary>Waited longer than Jobs:MaxQueueWait without being claimed.</summary>
    public bool Expire(DateTime now) => Status == JobStatus.Queued && End(JobStatus.Expired, null, now);

    /// <summary>
    /// The owner or an admin cancels: a queued job is canceled at once, a running one is asked to stop before its next
    /// step (it ends with <see cref="EndCanceled"/>). <paramref name="outcome"/> says which, or that it had finished.
    /// </summary>
    public bool Cancel(DateTime now, out CancelOutcome outcome)
    {
        switch (Status)
        {
            case JobStatus.Queued:
                CancelRequested = true;
                outcome = CancelOutcome.Canceled;
                return End(JobStatus.Canceled, null, now);
            case JobStatus.Running:
                outcome = CancelOutcome.Canceling;
                if (CancelRequested) return false;
                CancelRequested = true;
                return true;
            default:
                outcome = CancelOutcome.AlreadyFinished;
                return false;
        }
    }

    /// <summary>
    /// Ran out of GPU memory even degraded: back to the queue once, at low priority, behind every normal and high job
    /// queued meanwhile (often lighter: the memory they leave may be enough).
    /// </summary>
    public bool RequeueAfterOutOfMemory()
    {
        if (IsFinished || CancelRequested || OomRequeued) return false;
        OomRequeued = true;
        OomRetries++;
        Priority = JobPriority.Low;
        Status = JobStatus.Queued;
        Stage = null;
        Step = 0;
        return true;
    }

    /// <summary>
    /// Hangfire elected Processing for a job that already started <paramref name="maxAttempts"/> times: the runs keep
    /// killing the worker, so the job fails worker_lost instead of running again.
    /// </summary>
    public bool LoseWorker(int maxAttempts, DateTime now) =>
        !IsFinished && Attempts >= maxAttempts &&
        End(JobStatus.Failed, new JobError { Code = JobErrorCodes.WorkerLost, Message = $"The worker was lost {maxAttempts} times while running this job." }, now);

    /// <summary>An admin changes the class of a job that still waits.</summary>
    public bool Reprioritize(int priority)
    {
        if (Status != JobStatus.Queued || Priority == priority) return false;
        Priority = priority;
        return true;
    }

    private bool End(JobStatus status, JobError? error, DateTime now)
    {
        if (IsFinished) return false;
        Status = status;
        Error = error;
        FinishedAt = now;
        return true;
    }
}

public enum CancelOutcome { Canceled, Canceling, AlreadyFinished }

/// <summary>The normalised parameters: every default filled in and the seed resolved, so a re-run is identical.</summary>
public sealed class JobParams
{
    public string Prompt { get; set; } = "";
    public string NegativePrompt { get; set; } = "";
    public int Width { get; set; }
    public int Height { get; set; }
    public int Steps { get; set; }
    public double Guidance { get; set; }
    public SamplerKind Sampler { get; set; }
    public long Seed { get; set; }
    public int Count { get; set; }
    public string SystemPrompt { get; set; } = "auto";
    // Initialised to the defaults so that jobs stored before these fields existed read back as what they ran with.
    public double CfgTrunc { get; set; } = 1.0;
    public double RenormCfg { get; set; } = 1.0;
    public double Shift { get; set; } = 6.0;
    public string Preset { get; set; } = "default";

    /// <summary>The most bytes the job's images can take: uncompressed RGB plus the metadata, so a PNG never takes more.</summary>
    [BsonIgnore] public long LargestBytes => (long)Count * ((long)Width * Height * 3 + 64 * 1024);

    public GenerationRequest ToRequest() => new()
    {
        Prompt = Prompt,
        NegativePrompt = NegativePrompt,
        Width = Width,
        Height = Height,
        Steps = Steps,
        Guidance = Guidance,
        Sampler = Sampler,
        Seed = Seed,
        Count = Count,
        SystemPrompt = SystemPrompt,
        CfgTrunc = CfgTrunc,
        RenormCfg = RenormCfg,
        Shift = Shift,
        Preset = Preset,
    };
}

public sealed class JobImage
{
    public int Index { get; set; }
    public int Width { get; set; }
    public int Height { get; set; }
    public long Seed { get; set; }
    /// <summary>The image's key in the outputs (relative to the folder, or in the bucket); generated by OutputStore, never from input.</summary>
    public string File { get; set; } = "";
}

/// <summary>Where the job's finish event goes and how its delivery went (issue 9).</summary>
public sealed class JobWebhook
{
    public string Url { get; set; } = "";
    public WebhookState State { get; set; }
    public int Attempts { get; set; }
    /// <summary>The receiver's HTTP status of the last attempt; null when it never answered.</summary>
    public int? LastStatus { get; set; }
    public string? LastError { get; set; }
    /// <summary>The Hangfire job that delivers it, so that a restart re-queues only a delivery that has none alive.</summary>
    public string? DeliveryJobId { get; set; }
}

public enum WebhookState { Pending, Delivering, Delivered, Failed, Refused }

public sealed class JobError
{
    public string Code { get; set; } = "";
    public string Message { get; set; } = "";
}

/// <summary>What the text side will do with the prompt, measured at submit time (IImageGenerator.Inspect).</summary>
public sealed class PromptTokens
{
    public int GemmaTokens { get; set; }
    public int GemmaTokensDropped { get; set; }
    public int JinaTokens { get; set; }
    public int JinaTokensDropped { get; set; }
}

/// <summary>Job failure codes (design.md §3).</summary>
public static class JobErrorCodes
{
    public const string OutOfMemory = "out_of_memory", WorkerLost = "worker_lost", Timeout = "timeout", Internal = "internal",
        InsufficientStorage = "insufficient_storage", OutputsUnavailable = "outputs_unavailable";
}
