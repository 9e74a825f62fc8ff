using System.ComponentModel.DataAnnotations;

namespace NewBie.Host.Accounts;

public sealed class AccountsOptions
{
    public const string Section = "Accounts";

    /// <summary>Limits of a user who has none of their own.</summary>
    public UserDefaults Defaults { get; set; } = new();

    public RateLimitOptions RateLimits { get; set; } = new();
}

public sealed class UserDefaults
{
    /// <summary>high, normal or low. Default normal.</summary>
    [RegularExpression("^(high|normal|low)$")] public string PriorityClass { get; set; } = "normal";

    /// <summary>Queued plus running jobs of one user; beyond it submit answers 429 user_queue_full. Default 20.</summary>
    [Range(1, 1_000_000)] public int MaxQueuedJobs { get; set; } = 20;

    /// <summary>Images one user may ask for per UTC day; beyond it 429 quota_exceeded. Default 500.</summary>
    [Range(0, 10_000_000)] public int ImagesPerDay { get; set; } = 500;

    /// <summary>Largest width × height for one user. Default 2048 × 2048.</summary>
    [Range(1, 268_435_456)] public int MaxPixels { get; set; } = 2048 * 2048;

    /// <summary>Most steps for one user. Default 100.</summary>
    [Range(1, 1000)] public int MaxSteps { get; set; } = 100;

    /// <summary>Most images per job for one user. Default 4.</summary>
    [Range(1, 64)] public int MaxCount { get; set; } = 4;

    /// <summary>
    /// Bytes one user's kept images may take on disk; a submit whose images could pass it (counted at their largest:
    /// width × height × 3 bytes each, for it and the user's unfinished jobs) is 403 storage_cap_exceeded. 0: no cap.
    /// Default 10 GiB.
    /// </summary>
    [Range(0L, long.MaxValue)] public long MaxStorageBytes { get; set; } = 10L << 30;
}

public sealed class RateLimitOptions
{
    /// <summary>Submissions one API key (or the local admin) may make in a burst. Default 10.</summary>
    [Range(1, 1_000_000)] public int KeyBurst { get; set; } = 10;

    /// <summary>Time for one key to earn one more submission. Default 6 s (10 per minute sustained).</summary>
    public TimeSpan KeyRefillPeriod { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>Submissions of all users together per second. Default 2.</summary>
    [Range(1, 1_000_000)] public int GlobalPerSecond { get; set; } = 2;

    /// <summary>Submissions of all users together per hour. Default 100.</summary>
    [Range(1, 100_000_000)] public int GlobalPerHour { get; set; } = 100;

    /// <summary>Requests to unauthenticated endpoints (login) per client IP per minute. Default 5.</summary>
    [Range(1, 1_000_000)] public int AnonymousPerIpPerMinute { get; set; } = 5;
}
