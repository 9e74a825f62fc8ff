using System.Threading.RateLimiting;

namespace NewBie.Host.Accounts;

/// <summary>
/// Token bucket and fixed window limiters on a TimeProvider. The framework's own limiters read Stopwatch even when
/// replenished by hand, so a test clock cannot move them; these compute their state from the clock lazily at each
/// acquire and report the wait as the standard RetryAfter metadata.
/// </summary>
public abstract class ClockRateLimiter(TimeProvider time) : RateLimiter
{
    private readonly Lock _gate = new();
    private DateTimeOffset? _fullSince;

    protected DateTimeOffset Now => time.GetUtcNow();

    /// <summary>How long the limiter has been back at full strength: PartitionedRateLimiter drops idle partitions.</summary>
    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                Refresh(Now);
                if (Available < Capacity)
                {
                    _fullSince = null;
                    return null;
                }
                _fullSince ??= Now;
                return Now - _fullSince.Value;
            }
        }
    }

    protected abstract long Available { get; }

    protected abstract long Capacity { get; }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            Refresh(Now);
            return new RateLimiterStatistics { CurrentAvailablePermits = Available };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount)
    {
        lock (_gate)
        {
            var now = Now;
            Refresh(now);
            if (permitCount == 0) return Available > 0 ? Lease.Granted : new Lease(WaitFor(1, now));
            if (Available >= permitCount)
            {
                Take(permitCount);
                return Lease.Granted;
            }
            return new Lease(WaitFor(permitCount, now));
        }
    }

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    /// <summary>Brings the state up to <paramref name="now"/> (under the lock).</summary>
    protected abstract void Refresh(DateTimeOffset now);

    protected abstract void Take(int permits);

    /// <summary>When <paramref name="permits"/> will be available, counted from <paramref name="now"/>.</summary>
    protected abstract TimeSpan WaitFor(int permits, DateTimeOffset now);

    private sealed class Lease(TimeSpan? retryAfter) : RateLimitLease
    {
        public static readonly Lease Granted = new(null);

        public override bool IsAcquired => retryAfter is null;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = metadataName == MetadataName.RetryAfter.Name ? retryAfter : null;
            return metadata is not null;
        }
    }
}

/// <summary>Holds up to <c>limit</c> tokens and earns one every <c>period</c>: a burst, then a steady rate.</summary>
public sealed class ClockTokenBucket : ClockRateLimiter
{
    private readonly int _limit;
    private readonly TimeSpan _period;
    private long _tokens;
    private DateTimeOffset _lastRefill;

    public ClockTokenBucket(TimeProvider time, int limit, TimeSpan period) : base(time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(period, TimeSpan.Zero);
        _limit = limit;
        _period = period;
        _tokens = limit;
        _lastRefill = Now;
    }

    protected override long Available => _tokens;

    protected override long Capacity => _limit;

    protected override void Refresh(DateTimeOffset now)
    {
        var earned = (now - _lastRefill).Ticks / _period.Ticks;
        if (earned <= 0) return;
        _tokens = Math.Min(_limit, _tokens + earned);
        // A full bucket earns nothing more; the clock restarts so the next token is a full period after use.
        _lastRefill = _tokens == _limit ? now : _lastRefill + earned * _period;
    }

    protected override void Take(int permits) => _tokens -= permits;

    protected override TimeSpan WaitFor(int permits, DateTimeOffset now) =>
        permits > _limit ? TimeSpan.MaxValue : _lastRefill + (permits - _tokens) * _period - now;
}

/// <summary>At most <c>limit</c> permits per window; a window opens at the first acquire after the previous one closed.</summary>
public sealed class ClockFixedWindow : ClockRateLimiter
{
    private readonly int _limit;
    private readonly TimeSpan _window;
    private long _used;
    private DateTimeOffset _windowStart;

    public ClockFixedWindow(TimeProvider time, int limit, TimeSpan window) : base(time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(window, TimeSpan.Zero);
        _limit = limit;
        _window = window;
        _windowStart = Now;
    }

    protected override long Available => _limit - _used;

    protected override long Capacity => _limit;

    protected override void Refresh(DateTimeOffset now)
    {
        if (now - _windowStart < _window) return;
        _windowStart = now;
        _used = 0;
    }

    protected override void Take(int permits)
    {
        // The window starts with its first use, so an idle limiter does not hand out a window that is nearly over.
        if (_used == 0) _windowStart = Now;
        _used += permits;
    }

    protected override TimeSpan WaitFor(int permits, DateTimeOffset now) =>
        permits > _limit ? TimeSpan.MaxValue : _windowStart + _window - now;
}
