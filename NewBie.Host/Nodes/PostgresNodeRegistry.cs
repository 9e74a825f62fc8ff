using Npgsql;
using NewBie.Host.Storage.Postgres;

namespace NewBie.Host.Nodes;

/// <summary>
/// The nodes' heartbeats as rows of <c>newbie_nodes</c>, one per node name, stamped with the database's clock so that
/// the nodes' own clocks never decide who is lost. The table is a step of <see cref="PostgresSchema"/>; rows of nodes
/// gone for a week go.
/// </summary>
public sealed class PostgresNodeRegistry(PostgresDatabase database) : INodeRegistry
{
    private readonly NpgsqlDataSource _dataSource = database.Source;

    public async Task BeatAsync(NodeBeat beat, CancellationToken cancellationToken)
    {
        // A node that comes back under the same name (a restart) starts a new life: started_at moves unless it was live.
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO newbie_nodes (name, device, memory_plan, state, running_job, started_at, last_seen)
            VALUES ($1, $2, $3, $4, $5, now(), now())
            ON CONFLICT (name) DO UPDATE SET device = $2, memory_plan = $3, state = $4, running_job = $5, last_seen = now(),
                started_at = CASE WHEN newbie_nodes.state = 'stopped' OR newbie_nodes.last_seen < now() - $6 THEN now() ELSE newbie_nodes.started_at END
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = beat.Name });
        command.Parameters.Add(new NpgsqlParameter { Value = beat.Device });
        command.Parameters.Add(new NpgsqlParameter { Value = beat.MemoryPlan });
        command.Parameters.Add(new NpgsqlParameter { Value = beat.State });
        command.Parameters.Add(new NpgsqlParameter { Value = (object?)beat.RunningJob ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = TimeSpan.FromMinutes(1) });
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<NodeInfo>> ListAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        await using (var prune = _dataSource.CreateCommand("DELETE FROM newbie_nodes WHERE last_seen < now() - interval '7 days'"))
            await prune.ExecuteNonQueryAsync(cancellationToken);
        await using var command = _dataSource.CreateCommand("""
            SELECT name, device, memory_plan, state, running_job, started_at, last_seen, last_seen < now() - $1
            FROM newbie_nodes ORDER BY name
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = timeout });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var nodes = new List<NodeInfo>();
        while (await reader.ReadAsync(cancellationToken))
            nodes.Add(new NodeInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetDateTime(5), reader.GetDateTime(6), reader.GetBoolean(7)));
        return nodes;
    }
}
