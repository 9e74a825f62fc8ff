using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;
using NewBie.Host.Accounts;
using NewBie.Host.Storage;
using NewBie.Host.Telemetry;

namespace NewBie.Host.Nodes;

public static class NodesSetup
{
    /// <summary>
    /// The node list and, with PostgreSQL (Storage:Provider=postgres), what joins the nodes: heartbeats in the shared
    /// database, job signals by NOTIFY/LISTEN and a readiness check of the shared store. The embedded mode keeps one
    /// node in memory and signals nothing.
    /// </summary>
    public static IHostApplicationBuilder AddNodes(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<NodeIdentity>();
        services.AddSingleton<NodeHeartbeat>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeHeartbeat>());
        if (!StorageOptions.UsesPostgres(builder.Configuration))
        {
            services.AddSingleton<INodeRegistry, LocalNodeRegistry>();
            return builder;
        }
        // The data source and the schema (newbie_nodes is one of its tables) are StorageSetup's.
        services.AddSingleton<INodeRegistry, PostgresNodeRegistry>();
        services.AddSingleton<PostgresJobSignals>();
        services.AddSingleton<IJobSignals>(sp => sp.GetRequiredService<PostgresJobSignals>());
        services.AddHostedService(sp => sp.GetRequiredService<PostgresJobSignals>());
        services.AddSingleton<ClusterJobEvents>();
        services.AddHostedService(sp => sp.GetRequiredService<ClusterJobEvents>());
        services.AddHealthChecks().AddCheck<SharedStoreReadiness>("shared_store", tags: [HealthEndpoints.ReadyTag]);
        return builder;
    }

    public static IEndpointRouteBuilder MapNodes(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/admin/nodes", async (NodeHeartbeat heartbeat, CancellationToken cancellationToken) =>
                TypedResults.Ok(new NodesDto(heartbeat.Self, [.. (await heartbeat.NodesAsync(cancellationToken)).Select(NodeDto.From)])))
            .WithTags("Admin").RequireAuthorization(Policies.Admin)
            .WithSummary("The nodes serving this queue: name, device, memory plan, state, running job, last heard of")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        return routes;
    }

    public sealed record NodesDto(string Self, IReadOnlyList<NodeDto> Nodes);

    public sealed record NodeDto(string Name, string Device, string MemoryPlan, string State, string? RunningJob, DateTime StartedAt, DateTime LastSeen)
    {
        public static NodeDto From(NodeInfo node) => new(node.Name, node.Device, node.MemoryPlan, node.Shown, node.RunningJob, node.StartedAt, node.LastSeen);
    }
}

/// <summary>Ready while the shared PostgreSQL answers (several nodes): without it no node can take or report a job.</summary>
public sealed class SharedStoreReadiness(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy("PostgreSQL answers");
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy($"PostgreSQL does not answer: {e.Message}");
        }
    }
}
