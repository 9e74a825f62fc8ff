namespace NewBie.Host.Accounts;

/// <summary>
/// Images asked for per user and UTC day: the daily quota's counters. A charge and its check are one step, so two
/// submits can never both pass the last free image. Its contract is <c>NewBie.Host.Tests.Storage.UsageStoreContract</c>.
/// </summary>
public interface IUsageStore
{
    /// <summary>
    /// Adds <paramref name="images"/> to the user's count of <paramref name="day"/> (a UTC date) unless the total would
    /// pass <paramref name="limit"/>; false, changing nothing, then.
    /// </summary>
    bool TryCharge(string userName, DateTime day, int images, int limit);

    /// <summary>Gives back images charged on <paramref name="day"/> (never below zero); the day of the charge, not today's.</summary>
    void Refund(string userName, DateTime day, int images);

    /// <summary>Images counted for the user on <paramref name="day"/> (0 when none).</summary>
    int Used(string userName, DateTime day);

    /// <summary>Every counter from <paramref name="fromDay"/> on, by day then user (ordinal).</summary>
    IReadOnlyList<UsageRecord> Since(DateTime fromDay);
}
