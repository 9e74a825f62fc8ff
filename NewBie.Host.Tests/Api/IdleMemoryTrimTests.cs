using NewBie.Host.Api;

namespace NewBie.Host.Tests.Api;

public sealed class IdleMemoryTrimTests
{
    [Theory]
    [InlineData(IdleMemoryTrim.BurstBytes, 0, true)]                                 // a burst, then quiet: trim
    [InlineData(IdleMemoryTrim.BurstBytes - 1, 0, false)]                            // too little to be worth a full collection
    [InlineData(IdleMemoryTrim.BurstBytes * 4, IdleMemoryTrim.IdleBytes, false)]     // still busy: never under load
    [InlineData(IdleMemoryTrim.BurstBytes * 4, IdleMemoryTrim.IdleBytes - 1, true)]
    public void Trims_once_a_burst_is_over_and_never_under_load(long sinceTrim, long sinceTick, bool trims) =>
        Assert.Equal(trims, IdleMemoryTrim.ShouldTrim(sinceTrim, sinceTick));
}
