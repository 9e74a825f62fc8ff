using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;

namespace NewBie.Host.Accounts;

public sealed class AccountException(string message) : Exception(message);

/// <summary>
/// The rules of accounts (valid names, password and key hashing, limits with their defaults, the daily quota) over
/// the stores that keep them; shared by the server and the command-line verbs.
/// </summary>
public sealed partial class AccountStore
{
    /// <summary>How stale a key's last-used time may get: a write per request would cost more than the request.</summary>
    private static readonly TimeSpan LastUsedResolution = TimeSpan.FromMinutes(1);

    private readonly IUserStore _users;
    private readonly IUsageStore _usage;
    private readonly IOptions<AccountsOptions> _options;
    private readonly TimeProvider _time;
    private readonly PasswordHasher<UserRecord> _hasher = new();
    private readonly Lazy<string> _dummyHash;

    public AccountStore(IUserStore users, IUsageStore usage, IOptions<AccountsOptions> options, TimeProvider time)
    {
        _users = users;
        _usage = usage;
        _options = options;
        _time = time;
        _dummyHash = new(() => _hasher.HashPassword(new UserRecord(), "not anyone's password"));
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    private static partial Regex ValidName();

    public static bool IsValidName(string name) => ValidName().IsMatch(name);

    public bool AnyUsers() => _users.AnyUsers();

    public UserRecord? FindUser(string name) => _users.FindUser(name);

    public IReadOnlyList<UserRecord> Users() => _users.Users();

    public UserRecord AddUser(string name, string role, string? password)
    {
        if (!IsValidName(name)) throw new AccountException("A user name is 1-64 letters, digits or . _ @ - and starts with a letter or digit.");
        if (!Roles.IsValid(role)) throw new AccountException("role must be admin or user.");
        var user = new UserRecord { Name = name, Role = role, CreatedAt = Now };
        if (password is not null) user.PasswordHash = HashPassword(user, password);
        if (!_users.TryAddUser(user)) throw new AccountException($"User '{name}' already exists.");
        return user;
    }

    /// <summary>Applies <paramref name="change"/> to a user and saves it; the change throws AccountException to refuse.</summary>
    public UserRecord UpdateUser(string name, Action<UserRecord> change) =>
        _users.UpdateUser(name, change) ?? throw new AccountException($"No user '{name}'.");

    public void SetPassword(UserRecord user, string? password) => user.PasswordHash = password is null ? null : HashPassword(user, password);

    /// <summary>Removes the user and their keys (their jobs and images stay until retention removes them).</summary>
    public bool RemoveUser(string name) => _users.RemoveUser(name);

    /// <summary>The user whose password this is, or null (unknown user, no password, wrong password).</summary>
    public UserRecord? CheckPassword(string name, string password)
    {
        if (FindUser(name) is not { PasswordHash: { } hash } user)
        {
            // The same slow hash as for a real user, so that the answer's timing does not tell which names exist.
            _hasher.VerifyHashedPassword(new UserRecord(), _dummyHash.Value, password);
            return null;
        }
        var result = _hasher.VerifyHashedPassword(user, hash, password);
        if (result == PasswordVerificationResult.SuccessRehashNeeded) UpdateUser(name, u => u.PasswordHash = HashPassword(u, password));
        return result == PasswordVerificationResult.Failed ? null : user;
    }

    /// <summary>Creates a key and returns it: the only time the key itself exists outside its holder.</summary>
    public (string Key, ApiKeyRecord Record) CreateKey(string userName, string? keyName)
    {
        if (FindUser(userName) is null) throw new AccountException($"No user '{userName}'.");
        var (key, id, hash) = ApiKeys.Create();
        var record = new ApiKeyRecord { Id = id, UserName = userName, Name = keyName ?? "default", Hash = hash, CreatedAt = Now };
        _users.AddKey(record);
        return (key, record);
    }

    public IReadOnlyList<ApiKeyRecord> Keys(string userName) => _users.Keys(userName);

    public bool RevokeKey(string userName, string id) => _users.RevokeKey(userName, id, Now);

    /// <summary>The owner and record of a valid, unrevoked key; null for anything else. Touches its last-used time.</summary>
    public (UserRecord User, ApiKeyRecord Key)? Authenticate(string key)
    {
        if (ApiKeys.IdOf(key) is not { } id || _users.FindKey(id) is not { RevokedAt: null } record) return null;
        if (!ApiKeys.Matches(key, record.Hash) || FindUser(record.UserName) is not { } user) return null;
        var now = Now;
        if (record.LastUsedAt is not { } last || now - last >= LastUsedResolution)
        {
            record.LastUsedAt = now;
            _users.TouchKey(record.Id, now);
        }
        return (user, record);
    }

    public EffectiveLimits LimitsOf(UserRecord? user)
    {
        var d = _options.Value.Defaults;
        var priority = JobPriority.Parse(user?.PriorityClass ?? d.PriorityClass) ?? JobPriority.Normal;
        return new EffectiveLimits(priority, user?.MaxQueuedJobs ?? d.MaxQueuedJobs, user?.ImagesPerDay ?? d.ImagesPerDay,
            user?.MaxPixels ?? d.MaxPixels, user?.MaxSteps ?? d.MaxSteps, user?.MaxCount ?? d.MaxCount, d.MaxStorageBytes);
    }

    /// <summary>Counts <paramref name="images"/> against today's quota, or refuses them all when they would pass it.</summary>
    public bool TryUseImages(string userName, int images, int perDay) => _usage.TryCharge(userName, Now.Date, images, perDay);

    /// <summary>
    /// Gives back images counted by <see cref="TryUseImages"/>: for a submit that then did not create a job, or a job
    /// that failed for a server-side reason (to the day it was charged, <paramref name="chargedAt"/>; default today).
    /// </summary>
    public void ReturnImages(string userName, int images, DateTime? chargedAt = null) => _usage.Refund(userName, (chargedAt ?? Now).Date, images);

    public IReadOnlyList<UsageRecord> Usage(DateTime fromDay) => _usage.Since(fromDay);

    /// <summary>Seconds until the daily quota resets (next UTC midnight).</summary>
    public double SecondsUntilQuotaReset() => (Now.Date.AddDays(1) - Now).TotalSeconds;

    private DateTime Now => _time.GetUtcNow().UtcDateTime;

    private string HashPassword(UserRecord user, string password)
    {
        if (password.Length < 8) throw new AccountException("A password has at least 8 characters.");
        return _hasher.HashPassword(user, password);
    }
}
