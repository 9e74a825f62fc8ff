using NewBie.Host.Tests.Storage;
using NewBie.LoadBench;

namespace NewBie.Host.Tests.Nodes;

/// <summary>
/// Two real server processes on one PostgreSQL database (the test run's cluster) and one outputs store, each with the
/// stand-in engine (a fixed service time, so two nodes on two cores still run side by side) and a short node timeout:
/// shared by a test class, since starting the pair is what costs. Absent when PostgreSQL is missing (the tests skip).
/// </summary>
public sealed class TwoNodesFixture : IAsyncLifetime
{
    /// <summary>What every job of these tests takes on either node.</summary>
    public static readonly TimeSpan ServiceTime = TimeSpan.FromSeconds(3);

    /// <summary>Jobs:NodeTimeout of both nodes: how long a killed node's job waits before the other claims it.</summary>
    public static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(4);

    private PostgresTestDatabase? _db;

    internal NodeCluster Cluster { get; private set; } = null!;

    public string Outputs { get; } = Directory.CreateTempSubdirectory("newbie-shared-outputs-").FullName;

    public async Task InitializeAsync()
    {
        if (PostgresCluster.Missing is not null) return;
        _db = PostgresCluster.CreateDatabase();
        Cluster = await NodeCluster.StartAsync(2,
            "Storage:Provider=postgres",
            $"ConnectionStrings:Postgres={_db.ConnectionString}",
            $"Jobs:NodeTimeout={NodeTimeout}",
            $"Engine:StandIn:ServiceTime={ServiceTime}",
            "Storage:MinFreeBytes=0");
    }

    /// <summary>The PNG files the outputs store holds for <paramref name="jobId"/>, thumbnails aside.</summary>
    public IReadOnlyList<string> OutputFilesOf(string jobId) =>
        [.. Cluster.DataDirs.SelectMany(d => Directory.Exists(Path.Combine(d, "outputs"))
            ? Directory.GetFiles(Path.Combine(d, "outputs"), "*.png", SearchOption.AllDirectories) : [])
            .Where(f => f.Contains(Path.DirectorySeparatorChar + jobId + Path.DirectorySeparatorChar, StringComparison.Ordinal) && !f.EndsWith(".thumb.png", StringComparison.Ordinal))];

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
        _db?.Dispose();
        try { Directory.Delete(Outputs, recursive: true); } catch (IOException) { }
    }
}
