using LiteDB;

namespace NewBie.Host.Accounts;

public static class Roles
{
    public const string Admin = "admin", User = "user";

    public static bool IsValid(string role) => role is Admin or User;
}

/// <summary>A user as stored in the app database. Null limits follow Accounts:Defaults, so changing a default reaches every user who never had their own.</summary>
public sealed class UserRecord
{
    /// <summary>The user's name: also their id in job records and their outputs folder.</summary>
    [BsonId] public string Name { get; set; } = "";
    public string Role { get; set; } = Roles.User;
    /// <summary>ASP.NET Core Identity's PBKDF2 hash; null: no password, API keys only.</summary>
    public string? PasswordHash { get; set; }
    public string? PriorityClass { get; set; }
    public int? MaxQueuedJobs { get; set; }
    public int? ImagesPerDay { get; set; }
    public int? MaxPixels { get; set; }
    public int? MaxSteps { get; set; }
    public int? MaxCount { get; set; }
    public DateTime CreatedAt { get; set; }

    [BsonIgnore] public bool IsAdmin => Role == Roles.Admin;
}

/// <summary>An API key: only its SHA-256 is kept; the key itself is shown once when created.</summary>
public sealed class ApiKeyRecord
{
    /// <summary>The public part of the key (nb_ID_secret): finds the record without scanning hashes.</summary>
    [BsonId] public string Id { get; set; } = "";
    public string UserName { get; set; } = "";
    public string Name { get; set; } = "";
    public byte[] Hash { get; set; } = [];
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}

/// <summary>Images asked for by one user on one UTC day: the daily quota's counter.</summary>
public sealed class UsageRecord
{
    /// <summary>"user/yyyy-MM-dd".</summary>
    [BsonId] public string Id { get; set; } = "";
    public string UserName { get; set; } = "";
    public DateTime Day { get; set; }
    public int ImagesRequested { get; set; }
}

/// <summary>A user's limits with the defaults filled in.</summary>
public sealed record EffectiveLimits(int Priority, int MaxQueuedJobs, int ImagesPerDay, int MaxPixels, int MaxSteps, int MaxCount, long MaxStorageBytes);
