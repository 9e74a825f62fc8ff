using Microsoft.Extensions.Options;
using NewBie.Host.Api;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Nodes;

/// <summary>What a node says about itself at each heartbeat.</summary>
public sealed record NodeBeat(string Name, string Device, string MemoryPlan, string State, string? RunningJob);

/// <summary>
/// A node as the shared store last heard of it. <see cref="Lost"/>: not heard of for longer than Jobs:NodeTimeout
/// (killed, cut off, or stopped without saying so); its job, if any, is claimed again by another node.
/// </summary>
public sealed record NodeInfo(string Name, string Device, string MemoryPlan, string State, string? RunningJob, DateTime StartedAt, DateTime LastSeen, bool Lost)
{
    /// <summary>What the node list shows: the state the node reported, or "lost".</summary>
    public string Shown => Lost && State != NodeStates.Stopped ? NodeStates.Lost : State;
}

public static class NodeStates
{
    public const string Loading = "loading", Ready = "ready", Unavailable = "unavailable", Stopped = "stopped", Lost = "lost";
}

/// <summary>Where the nodes' heartbeats are kept: in memory with one node (embedded mode), or a PostgreSQL table.</summary>
public interface INodeRegistry
{
    /// <summary>Records the beat, the time of which is the store's clock (nodes' clocks may differ).</summary>
    Task BeatAsync(NodeBeat beat, CancellationToken cancellationToken);

    /// <summary>Every node heard of, by name; those silent for longer than <paramref name="timeout"/> marked lost.</summary>
    Task<IReadOnlyList<NodeInfo>> ListAsync(TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>The embedded mode's registry: this process is the one node.</summary>
public sealed class LocalNodeRegistry(TimeProvider time) : INodeRegistry
{
    private readonly DateTime _started = time.GetUtcNow().UtcDateTime;
    private (NodeBeat Beat, DateTime At)? _last;

    public Task BeatAsync(NodeBeat beat, CancellationToken cancellationToken)
    {
        _last = (beat, time.GetUtcNow().UtcDateTime);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<NodeInfo>> ListAsync(TimeSpan timeout, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<NodeInfo>>(_last is var (beat, at)
            ? [new NodeInfo(beat.Name, beat.Device, beat.MemoryPlan, beat.State, beat.RunningJob, _started, at, Lost: false)]
            : []);
}

/// <summary>This node's name (Server:NodeName, or machine name and process id).</summary>
public sealed class NodeIdentity(IOptions<ServerOptions> options)
{
    public string Name { get; } = options.Value.NodeName is { Length: > 0 } name ? name : $"{Environment.MachineName}:{Environment.ProcessId}";
}

/// <summary>
/// Writes this node's heartbeat every fifth of Jobs:NodeTimeout (name, device, memory plan, engine state, running job)
/// and keeps the node list read right after it, which the admin page and API show: one read per beat, whatever the
/// number of readers. At shutdown the node says it stopped.
/// </summary>
public sealed class NodeHeartbeat(
    INodeRegistry registry,
    NodeIdentity identity,
    EngineHost engines,
    MemoryPlanner planner,
    RunningJobs running,
    IOptions<JobsOptions> options,
    ILogger<NodeHeartbeat> logger) : BackgroundService
{
    private IReadOnlyList<NodeInfo>? _nodes;
    private bool _failing;
    private TaskCompletionSource _beaten = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TimeSpan Interval => TimeSpan.FromTicks(Math.Clamp(options.Value.NodeTimeout.Ticks / 5, TimeSpan.FromMilliseconds(200).Ticks, TimeSpan.FromSeconds(30).Ticks));

    /// <summary>The node list as of the last beat; read now if no beat has been made yet.</summary>
    public async Task<IReadOnlyList<NodeInfo>> NodesAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _nodes) ?? await registry.ListAsync(options.Value.NodeTimeout, cancellationToken);

    /// <summary>
    /// Completes once the next beat is written and the node list read after it: what waits for the list to change awaits
    /// it rather than reading the list again and again (the list changes only with a beat).
    /// </summary>
    public Task NextBeat => Volatile.Read(ref _beaten).Task;

    /// <summary>The node list as of the last beat (empty before the first).</summary>
    public IReadOnlyList<NodeInfo> Nodes => Volatile.Read(ref _nodes) ?? [];

    public string Self => identity.Name;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            await BeatAsync(Describe(), stoppingToken);
        }
        while (await Wait(timer, stoppingToken));
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        try
        {
            await BeatAsync(Describe() with { State = NodeStates.Stopped, RunningJob = null }, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Stopping ran out of time: the node shows as lost after Jobs:NodeTimeout instead of stopped.
        }
    }

    private NodeBeat Describe()
    {
        var model = engines.Engine?.Model;
        var state = engines.State switch
        {
            EngineState.Ready => NodeStates.Ready,
            EngineState.Loading => NodeStates.Loading,
            _ => NodeStates.Unavailable,
        };
        // The planner's description names the GPU ("cuda:0 NVIDIA H100 80GB HBM3"); an engine built elsewhere says only its device.
        var device = planner.Decision?.Description ?? model?.Device ?? "";
        var plan = (model?.MemoryPlan ?? planner.Decision?.Plan)?.Name() ?? "";
        return new NodeBeat(identity.Name, device, plan, state, running.Ids.FirstOrDefault());
    }

    private async Task BeatAsync(NodeBeat beat, CancellationToken cancellationToken)
    {
        try
        {
            await registry.BeatAsync(beat, cancellationToken);
            Volatile.Write(ref _nodes, await registry.ListAsync(options.Value.NodeTimeout, cancellationToken));
            Interlocked.Exchange(ref _beaten, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
            if (_failing) logger.LogInformation("Node heartbeat written again");
            _failing = false;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Said once per outage, not once per beat; /readyz reports the shared store meanwhile.
            if (!_failing) logger.LogWarning("Node heartbeat not written: {Message}", e.Message);
            _failing = true;
        }
    }

    private static async Task<bool> Wait(PeriodicTimer timer, CancellationToken stoppingToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
