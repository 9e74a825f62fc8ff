using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Accounts;

/// <summary>
/// The request-rate limits: a token bucket per API key for submissions, a fixed window per client IP for the
/// unauthenticated endpoints, and per-second and per-hour windows over all submissions. The limiters replenish on
/// timers of the app's TimeProvider (not their own), so tests move time and production uses the system clock.
/// </summary>
public sealed class Limits : IDisposable
{
    private readonly Family<TokenBucketRateLimiter> _perKey;
    private readonly Family<FixedWindowRateLimiter> _perIp;
    private readonly Family<FixedWindowRateLimiter> _globalSecond, _globalHour;

    public Limits(IOptions<AccountsOptions> options, TimeProvider time)
    {
        var o = options.Value.RateLimits;
        _perKey = new(time, o.KeyRefillPeriod, o.KeyBurst, () => new TokenBucketRateLimiter(new()
        {
            TokenLimit = o.KeyBurst, TokensPerPeriod = 1, ReplenishmentPeriod = o.KeyRefillPeriod, AutoReplenishment = false, QueueLimit = 0,
        }));
        _perIp = new(time, TimeSpan.FromMinutes(1), o.AnonymousPerIpPerMinute, () => Window(o.AnonymousPerIpPerMinute, TimeSpan.FromMinutes(1)));
        _globalSecond = new(time, TimeSpan.FromSeconds(1), o.GlobalPerSecond, () => Window(o.GlobalPerSecond, TimeSpan.FromSeconds(1)));
        _globalHour = new(time, TimeSpan.FromHours(1), o.GlobalPerHour, () => Window(o.GlobalPerHour, TimeSpan.FromHours(1)));
    }

    /// <summary>Null when the submission may go on, else how long to wait. Checks the caller's bucket first so that one busy key does not use up the global budget.</summary>
    public TimeSpan? TrySubmit(string callerKey)
    {
        if (Acquire(_perKey.For(callerKey)) is { } wait) return wait;
        return Acquire(_globalSecond.For("")) ?? Acquire(_globalHour.For(""));
    }

    /// <summary>Null when an unauthenticated request from this address may go on, else how long to wait.</summary>
    public TimeSpan? TryAnonymous(string clientIp) => Acquire(_perIp.For(clientIp));

    public void Dispose()
    {
        _perKey.Dispose();
        _perIp.Dispose();
        _globalSecond.Dispose();
        _globalHour.Dispose();
    }

    private static FixedWindowRateLimiter Window(int permits, TimeSpan window) =>
        new(new() { PermitLimit = permits, Window = window, AutoReplenishment = false, QueueLimit = 0 });

    private static TimeSpan? Acquire(RateLimiter limiter)
    {
        using var lease = limiter.AttemptAcquire();
        if (lease.IsAcquired) return null;
        return lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
    }

    /// <summary>
    /// One limiter per partition, all replenished by one timer. A partition back at full strength is dropped (not
    /// disposed: without auto-replenishment it holds nothing), so idle keys and addresses do not pile up.
    /// </summary>
    private sealed class Family<T> : IDisposable where T : ReplenishingRateLimiter
    {
        private readonly ConcurrentDictionary<string, T> _limiters = new();
        private readonly Func<T> _create;
        private readonly long _full;
        private readonly ITimer _timer;

        public Family(TimeProvider time, TimeSpan period, int full, Func<T> create)
        {
            _create = create;
            _full = full;
            _timer = time.CreateTimer(_ => Replenish(), null, period, period);
        }

        public T For(string partition) => _limiters.GetOrAdd(partition, _ => _create());

        public void Dispose()
        {
            _timer.Dispose();
            foreach (var limiter in _limiters.Values) limiter.Dispose();
        }

        private void Replenish()
        {
            foreach (var (partition, limiter) in _limiters)
            {
                limiter.TryReplenish();
                if (limiter.GetStatistics()?.CurrentAvailablePermits >= _full) _limiters.TryRemove(partition, out _);
            }
        }
    }
}
