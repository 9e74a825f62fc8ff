using System.Collections.Concurrent;
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
    private readonly KnownAccounts? _known;

    public AccountStore(IUserStore users, IUsageStore usage, IOptions<AccountsOptions> options, TimeProvider time)
    {
        _users = users;
        _usage = usage;
        _options = options;
        _time = time;
        _dummyHash = new(() => _hasher.HashPassword(new UserRecord(), "not anyone's password"));
        // Another process's revoke could not clear this process's memory: a shared store is read on every request.
        _known = users.SharedWithOtherProcesses ? null : new KnownAccounts();
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    private static partial Regex ValidName();

    public static bool IsValidName(string name) => ValidName().IsMatch(name);

    public bool AnyUsers() => _users.AnyUsers();

    /// <summary>The user, read from the store once and then from memory until the next write of users or keys (see <see cref="KnownAccounts"/>).</summary>
    public UserRecord? FindUser(string name)
    {
        if (_known?.FindUser(name) is { } known) return known;
        var generation = _known?.Generation ?? 0;
        var user = _users.FindUser(name);
        if (user is not null) _known?.AddUser(user, generation);
        return user;
    }

    public IReadOnlyList<UserRecord> Users() => _users.Users();

    public UserRecord AddUser(string name, string role, string? password)
    {
        if (!IsValidName(name)) throw new AccountException("A user name is 1-64 letters, digits or . _ @ - and starts with a letter or digit.");
        if (!Roles.IsValid(role)) throw new AccountException("role must be admin or user.");
        var user = new UserRecord { Name = name, Role = role, CreatedAt = Now, SecurityStamp = NewStamp() };
        if (password is not null) user.PasswordHash = HashPassword(user, password);
        if (!_users.TryAddUser(user)) throw new AccountException($"User '{name}' already exists.");
        return user;
    }

    /// <summary>Applies <paramref name="change"/> to a user and saves it; the change throws AccountException to refuse.</summary>
    public UserRecord UpdateUser(string name, Action<UserRecord> change)
    {
        try
        {
            return _users.UpdateUser(name, change) ?? throw new AccountException($"No user '{name}'.");
        }
        finally
        {
            _known?.Clear();
        }
    }

    /// <summary>Sets (or clears) the password and ends the user's sessions: a stolen cookie dies with the old password.</summary>
    public void SetPassword(UserRecord user, string? password)
    {
        user.PasswordHash = password is null ? null : HashPassword(user, password);
        user.SecurityStamp = NewStamp();
    }

    /// <summary>The stamp a new sign-in cookie of the user carries (made on first use for users stored before stamps).</summary>
    public string SessionStamp(string name) =>
        FindUser(name)?.SecurityStamp ?? UpdateUser(name, u => u.SecurityStamp ??= NewStamp()).SecurityStamp!;

    /// <summary>Ends every sign-in session of the user (their cookies are refused from the next request on); false: no such user.</summary>
    public bool EndSessions(string name)
    {
        var ended = _users.UpdateUser(name, u => u.SecurityStamp = NewStamp()) is not null;
        _known?.Clear();
        return ended;
    }

    /// <summary>The principal of a sign-in cookie (the API's, the admin page's and the studio's): name, role, security stamp.</summary>
    public System.Security.Claims.ClaimsPrincipal SessionPrincipal(UserRecord user)
    {
        System.Security.Claims.Claim[] claims =
        [
            new(System.Security.Claims.ClaimTypes.Name, user.Name), new(System.Security.Claims.ClaimTypes.Role, user.Role),
            new(CurrentUser.SecurityStampClaim, SessionStamp(user.Name)),
        ];
        return new(new System.Security.Claims.ClaimsIdentity(claims, Microsoft.AspNetCore.Authentication.Cookies.CookieAuthenticationDefaults.AuthenticationScheme));
    }

    public static string NewStamp() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>Removes the user and their keys (their jobs and images stay until retention removes them).</summary>
    public bool RemoveUser(string name)
    {
        var removed = _users.RemoveUser(name);
        _known?.Clear();
        return removed;
    }

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

    public bool RevokeKey(string userName, string id)
    {
        var revoked = _users.RevokeKey(userName, id, Now);
        _known?.Clear();
        return revoked;
    }

    /// <summary>The owner and record of a valid, unrevoked key; null for anything else. Touches its last-used time.</summary>
    public (UserRecord User, ApiKeyRecord Key)? Authenticate(string key)
    {
        if (ApiKeys.IdOf(key) is not { } id) return null;
        UserRecord? user;
        ApiKeyRecord? record;
        if (_known?.FindKey(id) is { } known)
        {
            // The stored hash is compared every time, timing-safe, as when read: only the reads are saved.
            if (!ApiKeys.Matches(key, known.Key.Hash)) return null;
            (user, record) = (known.User, known.Key);
        }
        else
        {
            var generation = _known?.Generation ?? 0;
            if (_users.FindKey(id) is not { RevokedAt: null } stored) return null;
            if (!ApiKeys.Matches(key, stored.Hash) || FindUser(stored.UserName) is not { } owner) return null;
            (user, record) = (owner, stored);
            _known?.AddKey(id, owner, stored, generation);
        }
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

    /// <summary>
    /// Keys verified once, with their owners as read then, by key id, and users read once, by name: a request with a known
    /// key costs a SHA-256 and a timing-safe comparison instead of two database reads (measured: those reads were a third
    /// of a status read's server time), and a submit's limits or a cookie's stamp no read at all. Only valid keys and
    /// existing users enter, so unknown ids or names cannot fill it. Every write of users or keys through
    /// <see cref="AccountStore"/> (its only writer where this is used) empties it, after the write: a revoked key, a
    /// removed or changed user is read again on the next request. A read that began before such a write keeps its
    /// answer to itself (<see cref="Generation"/>), so no stale entry outlives the write. The records kept are shared by
    /// every reader and never changed in place (writes go through the store's own copy).
    /// </summary>
    private sealed class KnownAccounts
    {
        // Enough for every key and user of a large deployment; past it, starting over costs one read per key or user.
        private const int Capacity = 10_000;

        // Read without the lock (every request); replaced, not cleared, under it, so an add checked against the
        // generation lands in the dictionaries of that generation or in none.
        private readonly Lock _gate = new();
        private Entries _entries = new();
        private long _generation;

        private sealed class Entries
        {
            public readonly ConcurrentDictionary<string, (UserRecord User, ApiKeyRecord Key)> Keys = new(StringComparer.Ordinal);
            public readonly ConcurrentDictionary<string, UserRecord> Users = new(StringComparer.Ordinal);
        }

        public long Generation => Interlocked.Read(ref _generation);

        public (UserRecord User, ApiKeyRecord Key)? FindKey(string id) => Volatile.Read(ref _entries).Keys.TryGetValue(id, out var found) ? found : null;

        public UserRecord? FindUser(string name) => Volatile.Read(ref _entries).Users.GetValueOrDefault(name);

        /// <summary>Keeps what a read found, unless a write came after <paramref name="readAt"/> (the read may predate it).</summary>
        public void AddKey(string id, UserRecord user, ApiKeyRecord key, long readAt) => Add(readAt, e => e.Keys[id] = (user, key));

        /// <inheritdoc cref="AddKey"/>
        public void AddUser(UserRecord user, long readAt) => Add(readAt, e => e.Users[user.Name] = user);

        private void Add(long readAt, Action<Entries> add)
        {
            lock (_gate)
            {
                if (readAt != _generation) return;
                if (_entries.Keys.Count + _entries.Users.Count >= Capacity) Volatile.Write(ref _entries, new Entries());
                add(_entries);
            }
        }

        public void Clear()
        {
            lock (_gate)
            {
                Interlocked.Increment(ref _generation);
                Volatile.Write(ref _entries, new Entries());
            }
        }
    }
}
