using Microsoft.Extensions.Options;
using NewBie.Host.Outputs;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Storage.Postgres;

/// <summary>
/// The bytes each user keeps, one row per user in <c>newbie_output_usage</c> that every node's writes and deletes move
/// (<c>INSERT … ON CONFLICT DO UPDATE</c>, one statement, so two nodes' changes add up), so the storage cap sees every
/// node's images the moment they are written. A row is measured from the store (a listing) when it has no count yet,
/// and again after Outputs:UsageRefresh (which catches outputs removed by hand, or a node killed between a write and
/// its count); a measurement is kept only if no write or delete moved the row while the store was listed
/// (<c>version</c>), since the listing may or may not have seen that change.
/// </summary>
public sealed class PostgresOutputUsage(PostgresDatabase database, TimeProvider time, IOptions<OutputsOptions> options) : IOutputUsage
{
    private readonly TimeSpan _refreshAfter = options.Value.UsageRefresh;

    public async Task<long> BytesAsync(string userId, Func<Task<long>> measure, CancellationToken cancellationToken)
    {
        long version = 0;
        await using (var read = database.Source.Command("SELECT bytes, version, measured_at FROM newbie_output_usage WHERE user_id = $1", Text(userId)))
        await using (var row = await read.ExecuteReaderAsync(cancellationToken))
        {
            if (await row.ReadAsync(cancellationToken))
            {
                version = row.GetInt64(1);
                if (!row.IsDBNull(0) && !row.IsDBNull(2) && time.GetUtcNow().UtcDateTime - row.GetFieldValue<DateTime>(2) < _refreshAfter)
                    return row.GetInt64(0);
            }
        }
        var measured = await measure();
        // An absent row is version 0 here, and a write's first count inserts version 1: either way a change made during
        // the listing leaves the row as that change made it.
        await using var keep = database.Source.Command("""
            INSERT INTO newbie_output_usage AS u (user_id, bytes, version, measured_at) VALUES ($1, $2, 0, $3)
            ON CONFLICT (user_id) DO UPDATE SET bytes = excluded.bytes, measured_at = excluded.measured_at WHERE u.version = $4
            """, Text(userId), Value(measured), Timestamp(time.GetUtcNow().UtcDateTime), Value(version));
        await keep.ExecuteNonQueryAsync(cancellationToken);
        return measured;
    }

    public async Task AddAsync(string userId, long delta)
    {
        // Not cancellable: the store has changed already, and a count left behind would be wrong until the next refresh.
        // A row not measured yet (bytes null) stays so (null + delta is null): its first measurement counts everything.
        await using var add = database.Source.Command("""
            INSERT INTO newbie_output_usage AS u (user_id, bytes, version) VALUES ($1, NULL, 1)
            ON CONFLICT (user_id) DO UPDATE SET bytes = CASE WHEN u.bytes IS NULL THEN NULL ELSE greatest(0, u.bytes + $2) END, version = u.version + 1
            """, Text(userId), Value(delta));
        await add.ExecuteNonQueryAsync(CancellationToken.None);
    }
}
