using System.Threading.RateLimiting;
using Microsoft.Extensions.Time.Testing;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

public sealed class ClockRateLimiterTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Token_bucket_gives_a_burst_then_one_token_per_period_and_never_more_than_its_limit()
    {
        using var bucket = new ClockTokenBucket(_time, limit: 3, TimeSpan.FromSeconds(10));
        Assert.All(Enumerable.Range(0, 3), _ => Assert.True(Take(bucket)));
        _time.Advance(TimeSpan.FromSeconds(4));
        using var refused = bucket.AttemptAcquire();

        _time.Advance(TimeSpan.FromSeconds(6));
        var afterOnePeriod = (Take(bucket), Take(bucket));
        _time.Advance(TimeSpan.FromHours(1));
        var afterIdle = Enumerable.Range(0, 4).Count(_ => Take(bucket));

        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(6), retryAfter);
        Assert.Equal((true, false), afterOnePeriod);
        Assert.Equal(3, afterIdle);
    }

    [Fact]
    public void Fixed_window_opens_at_first_use_and_refuses_until_it_closes()
    {
        using var window = new ClockFixedWindow(_time, limit: 2, TimeSpan.FromMinutes(1));
        _time.Advance(TimeSpan.FromMinutes(5));
        Assert.True(Take(window));
        _time.Advance(TimeSpan.FromSeconds(50));
        Assert.True(Take(window));
        using var refused = window.AttemptAcquire();

        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(10), retryAfter);
        Assert.True(Take(window));
    }

    [Fact]
    public void Idle_duration_counts_only_while_back_at_full_strength()
    {
        using var bucket = new ClockTokenBucket(_time, limit: 1, TimeSpan.FromSeconds(10));
        Take(bucket);
        var whileUsed = bucket.IdleDuration;
        _time.Advance(TimeSpan.FromSeconds(10));
        var refilled = bucket.IdleDuration;
        _time.Advance(TimeSpan.FromSeconds(30));

        Assert.Null(whileUsed);
        Assert.Equal(TimeSpan.Zero, refilled);
        Assert.Equal(TimeSpan.FromSeconds(30), bucket.IdleDuration);
    }

    private static bool Take(RateLimiter limiter)
    {
        using var lease = limiter.AttemptAcquire();
        return lease.IsAcquired;
    }
}
