using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Accounts;

/// <summary>
/// The request-rate limits, all on the app's TimeProvider (the README's "Limits" table is the model):
/// a token bucket per API key over every submit attempt, checked before the body is read, so that a flood costs the
/// sender only; a fixed window per client address for unauthenticated requests (login); and global per-second and
/// per-hour admission windows over accepted jobs only, of which one user may take at most <c>UserShareOfGlobal</c>, so
/// that neither refused requests nor a single user can use up what everyone shares.
/// </summary>
public sealed class Limits : IDisposable
{
    private readonly RateLimitOptions _options;
    private readonly TimeProvider _time;
    private readonly PartitionedRateLimiter<string> _perKey, _perIp;
    private readonly Admission _global;
    private readonly ConcurrentDictionary<string, Admission> _perUser = new(StringComparer.Ordinal);

    public Limits(IOptions<AccountsOptions> options, TimeProvider time)
    {
        var o = _options = options.Value.RateLimits;
        _time = time;
        _perKey = PartitionedRateLimiter.Create<string, string>(key =>
            RateLimitPartition.Get(key, _ => new ClockTokenBucket(time, o.KeyBurst, o.KeyRefillPeriod)));
        _perIp = PartitionedRateLimiter.Create<string, string>(ip =>
            RateLimitPartition.Get(ip, _ => new ClockFixedWindow(time, o.AnonymousPerIpPerMinute, TimeSpan.FromMinutes(1))));
        _global = new Admission(time, o.GlobalPerSecond, o.GlobalPerHour);
    }

    /// <summary>Null when this key may make another submit attempt, else how long to wait. Charged for every attempt.</summary>
    public TimeSpan? TrySubmit(string callerKey)
    {
        using var own = _perKey.AttemptAcquire(callerKey);
        return Wait(own);
    }

    /// <summary>
    /// Whether a valid job of <paramref name="userId"/> may be admitted now: null when it may, else the refusal (the
    /// user's share used up: theirs to wait for; the global windows full: the server is busy). Nothing is charged:
    /// <see cref="Admitted"/> does that once the job is stored.
    /// </summary>
    public AdmissionRefusal? CheckAdmission(string userId)
    {
        if (UserWindows(userId).Check() is { } userWait) return new AdmissionRefusal(userWait, Global: false);
        return _global.Check() is { } globalWait ? new AdmissionRefusal(globalWait, Global: true) : null;
    }

    /// <summary>Charges one accepted job of <paramref name="userId"/> to their share and to the global windows.</summary>
    public void Admitted(string userId)
    {
        UserWindows(userId).Take();
        _global.Take();
    }

    /// <summary>Null when an unauthenticated request from this address may go on, else how long to wait.</summary>
    public TimeSpan? TryAnonymous(string clientIp)
    {
        using var lease = _perIp.AttemptAcquire(clientIp);
        return Wait(lease);
    }

    public void Dispose()
    {
        _perKey.Dispose();
        _perIp.Dispose();
        _global.Dispose();
        foreach (var windows in _perUser.Values) windows.Dispose();
    }

    private Admission UserWindows(string userId) => _perUser.GetOrAdd(userId, _ => new Admission(_time,
        Share(_options.GlobalPerSecond, _options.UserShareOfGlobal), Share(_options.GlobalPerHour, _options.UserShareOfGlobal)));

    private static int Share(int limit, double share) => limit == 0 ? 0 : Math.Max(1, (int)Math.Ceiling(limit * share));

    private static TimeSpan? Wait(RateLimitLease lease) =>
        lease.IsAcquired ? null : lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);

    /// <summary>A per-second and a per-hour window (0: none) over admitted jobs.</summary>
    private sealed class Admission(TimeProvider time, int perSecond, int perHour) : IDisposable
    {
        private readonly ClockFixedWindow? _second = perSecond > 0 ? new(time, perSecond, TimeSpan.FromSeconds(1)) : null;
        private readonly ClockFixedWindow? _hour = perHour > 0 ? new(time, perHour, TimeSpan.FromHours(1)) : null;

        public TimeSpan? Check()
        {
            foreach (var window in new[] { _second, _hour })
            {
                if (window is null) continue;
                using var peek = window.AttemptAcquire(0);
                if (Wait(peek) is { } wait) return wait;
            }
            return null;
        }

        /// <summary>Concurrent admissions may both pass <see cref="Check"/>: the window then runs over by those few.</summary>
        public void Take()
        {
            _second?.AttemptAcquire(1).Dispose();
            _hour?.AttemptAcquire(1).Dispose();
        }

        public void Dispose()
        {
            _second?.Dispose();
            _hour?.Dispose();
        }
    }
}

/// <summary>Why a valid job is not admitted now: how long to wait, and whether the global windows (not the user's share) are full.</summary>
public sealed record AdmissionRefusal(TimeSpan Wait, bool Global);
