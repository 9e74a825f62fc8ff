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
    private S3Server? _s3;
    private string _bucket = "";

    internal NodeCluster Cluster { get; private set; } = null!;

    /// <summary>Why these tests cannot run here (no PostgreSQL, or no S3 server), or null.</summary>
    public static string? Missing => PostgresCluster.Missing ?? S3Server.Missing;

    public async Task InitializeAsync()
    {
        if (Missing is not null) return;
        _db = PostgresCluster.CreateDatabase();
        _s3 = await S3Server.SharedAsync();
        _bucket = await _s3.CreateBucketAsync();
        Cluster = await NodeCluster.StartAsync(2,
        [
            "Storage:Provider=postgres",
            $"ConnectionStrings:Postgres={_db.ConnectionString}",
            .. _s3.ServeSettings(_bucket),
            $"Jobs:NodeTimeout={NodeTimeout}",
            $"Engine:StandIn:ServiceTime={ServiceTime}",
            "Storage:MinFreeBytes=0",
        ]);
    }

    /// <summary>Skips the test without PostgreSQL or the S3 server, or fails it where CI requires them.</summary>
    public static void SkipIfMissing()
    {
        PostgresCluster.SkipIfMissing();
        if (S3Server.Missing is not { } why) return;
        Assert.True(Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_S3") is not { Length: > 0 }, $"{why}, and NEWBIE_REQUIRE_S3 is set");
        Skip.If(true, why);
    }

    /// <summary>The PNG objects the bucket holds for <paramref name="jobId"/>, thumbnails aside.</summary>
    public async Task<IReadOnlyList<string>> OutputObjectsOfAsync(string jobId)
    {
        using var client = _s3!.Client();
        var keys = new List<string>();
        var request = new Amazon.S3.Model.ListObjectsV2Request { BucketName = _bucket };
        Amazon.S3.Model.ListObjectsV2Response response;
        do
        {
            response = await client.ListObjectsV2Async(request);
            keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);
        return [.. keys.Where(k => k.Contains($"/{jobId}/", StringComparison.Ordinal) && k.EndsWith(".png", StringComparison.Ordinal) && !k.EndsWith(".thumb.png", StringComparison.Ordinal))];
    }

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
        _db?.Dispose();
    }
}
