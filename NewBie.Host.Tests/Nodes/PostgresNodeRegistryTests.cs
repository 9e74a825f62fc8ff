using NewBie.Host.Storage.Postgres;
using NewBie.Host.Nodes;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Nodes;

/// <summary>The heartbeat table of several nodes on one real PostgreSQL database.</summary>
public sealed class PostgresNodeRegistryTests : IDisposable
{
    private readonly PostgresTestDatabase? _db = PostgresCluster.Missing is null ? PostgresCluster.CreateDatabase() : null;

    public void Dispose() => _db?.Dispose();

    [SkippableFact]
    public async Task Each_node_lists_every_node_and_one_silent_past_the_timeout_is_lost()
    {
        PostgresCluster.SkipIfMissing();
        var a = new PostgresNodeRegistry(new PostgresDatabase(_db!.NewDataSource()));
        var b = new PostgresNodeRegistry(new PostgresDatabase(_db.NewDataSource()));
        var timeout = TimeSpan.FromMilliseconds(500);

        await Task.WhenAll(a.BeatAsync(Beat("a", "job-1"), default), b.BeatAsync(Beat("b", null), default));
        var fromB = await b.ListAsync(timeout, default);

        Assert.Equal(["a", "b"], fromB.Select(n => n.Name));
        Assert.All(fromB, n => Assert.False(n.Lost));
        Assert.Equal("job-1", fromB[0].RunningJob);
        Assert.Equal(("cuda:0 test", "encoders-on-demand", NodeStates.Ready), (fromB[0].Device, fromB[0].MemoryPlan, fromB[0].Shown));

        // a keeps beating, b has gone silent. Lost is decided on PostgreSQL's clock (now() against b's last beat), which
        // no event of this process announces: a beats and reads again every 50 ms until b is lost, 20 s at most.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        IReadOnlyList<NodeInfo> nodes;
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "b was never marked lost");
            await a.BeatAsync(Beat("a", null), default);
            nodes = await a.ListAsync(timeout, default);
            await Task.Delay(50);
        }
        while (!nodes.Single(n => n.Name == "b").Lost);

        Assert.Equal(NodeStates.Lost, nodes.Single(n => n.Name == "b").Shown);
        Assert.Equal(NodeStates.Ready, nodes.Single(n => n.Name == "a").Shown);
        Assert.Null(nodes.Single(n => n.Name == "a").RunningJob);
    }

    [SkippableFact]
    public async Task Node_that_stopped_shows_stopped_and_starts_a_new_life_when_it_comes_back()
    {
        PostgresCluster.SkipIfMissing();
        var registry = new PostgresNodeRegistry(new PostgresDatabase(_db!.NewDataSource()));
        await registry.BeatAsync(Beat("a", null), default);
        var first = (await registry.ListAsync(TimeSpan.FromMinutes(1), default)).Single();

        await registry.BeatAsync(Beat("a", null) with { State = NodeStates.Stopped }, default);
        var stopped = (await registry.ListAsync(TimeSpan.Zero, default)).Single();
        await registry.BeatAsync(Beat("a", null), default);
        var back = (await registry.ListAsync(TimeSpan.FromMinutes(1), default)).Single();

        Assert.Equal(NodeStates.Stopped, stopped.Shown);
        Assert.True(back.StartedAt > first.StartedAt);
        Assert.Equal(NodeStates.Ready, back.Shown);
    }

    private static NodeBeat Beat(string name, string? job) => new(name, "cuda:0 test", "encoders-on-demand", NodeStates.Ready, job);
}
