using LiteDB;
using NewBie.Host.Accounts;

namespace NewBie.Host.Storage;

/// <summary>Daily image counters in the app database, one record per user and day; check-and-charge under one lock.</summary>
public sealed class LiteDbUsageStore : IUsageStore
{
    private readonly ILiteCollection<UsageRecord> _usage;
    private readonly Lock _gate;

    public LiteDbUsageStore(AppDatabase database)
    {
        _gate = database.Gate;
        _usage = database.Collection<UsageRecord>("usage");
        _usage.EnsureIndex(u => u.Day);
    }

    public bool TryCharge(string userName, DateTime day, int images, int limit)
    {
        var id = Id(userName, day);
        lock (_gate)
        {
            var usage = _usage.FindById(id) ?? new UsageRecord { Id = id, UserName = userName, Day = day.Date };
            if (usage.ImagesRequested + images > limit) return false;
            usage.ImagesRequested += images;
            _usage.Upsert(usage);
            return true;
        }
    }

    public void Refund(string userName, DateTime day, int images)
    {
        lock (_gate)
        {
            if (_usage.FindById(Id(userName, day)) is not { } usage) return;
            usage.ImagesRequested = Math.Max(0, usage.ImagesRequested - images);
            _usage.Update(usage);
        }
    }

    public int Used(string userName, DateTime day) => _usage.FindById(Id(userName, day))?.ImagesRequested ?? 0;

    public IReadOnlyList<UsageRecord> Since(DateTime fromDay) =>
        _usage.Find(u => u.Day >= fromDay.Date).OrderBy(u => u.Day).ThenBy(u => u.UserName, StringComparer.Ordinal).ToList();

    /// <summary>"user/yyyy-MM-dd": the record of one user's day (the format of the first wave's data, kept).</summary>
    private static string Id(string userName, DateTime day) => $"{userName}/{day:yyyy-MM-dd}";
}
