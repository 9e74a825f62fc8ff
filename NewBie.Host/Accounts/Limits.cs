using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Accounts;

/// <summary>
/// The request-rate limits: a token bucket per API key for submissions, a fixed window per client IP for the
/// unauthenticated endpoints, and per-second and per-hour windows over all submissions; all on the app's TimeProvider.
/// </summary>
public sealed class Limits : IDisposable
{
    private readonly PartitionedRateLimiter<string> _perKey, _perIp;
    private readonly RateLimiter _globalSecond, _globalHour;

    public Limits(IOptions<AccountsOptions> options, TimeProvider time)
    {
        var o = options.Value.RateLimits;
        _perKey = PartitionedRateLimiter.Create<string, string>(key =>
            RateLimitPartition.Get(key, _ => new ClockTokenBucket(time, o.KeyBurst, o.KeyRefillPeriod)));
        _perIp = PartitionedRateLimiter.Create<string, string>(ip =>
            RateLimitPartition.Get(ip, _ => new ClockFixedWindow(time, o.AnonymousPerIpPerMinute, TimeSpan.FromMinutes(1))));
        _globalSecond = new ClockFixedWindow(time, o.GlobalPerSecond, TimeSpan.FromSeconds(1));
        _globalHour = new ClockFixedWindow(time, o.GlobalPerHour, TimeSpan.FromHours(1));
    }

    /// <summary>
    /// Null when the submission may go on, else how long to wait. The caller's own bucket is checked first so that
    /// one busy key does not use up the global budget with submissions it is refused anyway.
    /// </summary>
    public TimeSpan? TrySubmit(string callerKey)
    {
        using var own = _perKey.AttemptAcquire(callerKey);
        if (Wait(own) is { } wait) return wait;
        using var second = _globalSecond.AttemptAcquire();
        if (Wait(second) is { } secondWait) return secondWait;
        using var hour = _globalHour.AttemptAcquire();
        return Wait(hour);
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
        _globalSecond.Dispose();
        _globalHour.Dispose();
    }

    private static TimeSpan? Wait(RateLimitLease lease) =>
        lease.IsAcquired ? null : lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
}
