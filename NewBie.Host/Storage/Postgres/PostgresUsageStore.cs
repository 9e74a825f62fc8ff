using Npgsql;
using NewBie.Host.Accounts;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// Daily image counters in PostgreSQL, one row per user and day. A charge is one statement (an insert or an update
/// guarded by the limit, on the row's lock), so nodes charging at once never pass the limit together.
/// </summary>
public sealed class PostgresUsageStore(PostgresDatabase database) : IUsageStore
{
    private readonly NpgsqlDataSource _source = database.Source;

    public bool TryCharge(string userName, DateTime day, int images, int limit) =>
        _source.Command("""
            INSERT INTO newbie_usage AS u (user_name, day, images) SELECT $1, $2, $3 WHERE $3 <= $4
            ON CONFLICT (user_name, day) DO UPDATE SET images = u.images + excluded.images WHERE u.images + excluded.images <= $4
            RETURNING images
            """, Text(userName), Day(day), Value(images), Value(limit)).Rows(r => r.GetInt32(0)).Count == 1;

    public void Refund(string userName, DateTime day, int images) =>
        _source.Command("UPDATE newbie_usage SET images = greatest(0, images - $3) WHERE user_name = $1 AND day = $2",
            Text(userName), Day(day), Value(images)).Execute();

    public int Used(string userName, DateTime day) =>
        _source.Command("SELECT images FROM newbie_usage WHERE user_name = $1 AND day = $2", Text(userName), Day(day)).Scalar<int>();

    public IReadOnlyList<UsageRecord> Since(DateTime fromDay) =>
        _source.Command("SELECT user_name, day, images FROM newbie_usage WHERE day >= $1 ORDER BY day, user_name", Day(fromDay)).Rows(r =>
        {
            var day = DateTime.SpecifyKind(r.GetFieldValue<DateOnly>(1).ToDateTime(TimeOnly.MinValue), DateTimeKind.Utc);
            var user = r.GetString(0);
            // The id the embedded store gives the same counter.
            return new UsageRecord { Id = $"{user}/{day:yyyy-MM-dd}", UserName = user, Day = day, ImagesRequested = r.GetInt32(2) };
        });

    private static NpgsqlParameter Day(DateTime day) => Value(DateOnly.FromDateTime(day));
}
