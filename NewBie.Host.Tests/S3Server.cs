using Amazon.S3;
using NewBie.LoadBench;

namespace NewBie.Host.Tests;

/// <summary>
/// The real S3-compatible server of the test run: one <see cref="S3rverProcess"/> (bench/NewBie.LoadBench, shared with
/// the multi-node bench), started once per test process on a free loopback port and stopped with the process.
/// <para>Usage, in-process (<see cref="NewBieApplication"/>):</para>
/// <code>
/// [S3Fact]
/// public async Task Something()
/// {
///     var s3 = await S3Server.SharedAsync();
///     var bucket = await s3.CreateBucketAsync();        // a fresh bucket per test: tests never see each other's objects
///     using var app = new NewBieApplication(s3.Settings(bucket));
/// </code>
/// <para>Child server processes (<c>ChildServers.StartAsync</c>, several nodes on one bucket): pass
/// <c>s3.ServeSettings(bucket)</c>, KEY=VALUE pairs. <see cref="Client"/> reads and writes the bucket directly.</para>
/// <para>Without node or s3rver's node_modules the <see cref="S3FactAttribute"/> tests skip, saying why; with
/// NEWBIE_REQUIRE_S3=1 (as in .ci/run) they fail instead.</para>
/// </summary>
public sealed class S3Server
{
    public const string AccessKey = S3rverProcess.AccessKey, SecretKey = S3rverProcess.SecretKey, Region = S3rverProcess.Region;

    private static readonly Lazy<Task<S3Server>> Shared = new(StartAsync);

    private readonly S3rverProcess _process;

    private S3Server(S3rverProcess process) => _process = process;

    /// <summary>http://127.0.0.1:PORT</summary>
    public string ServiceUrl => _process.ServiceUrl;

    /// <summary>Where s3rver keeps the buckets' objects.</summary>
    public string Folder => _process.Folder;

    /// <summary>Why the server cannot run here, or null when it can.</summary>
    public static string? Missing { get; } = NodeScripts.Missing ?? S3rverProcess.Missing;

    /// <summary>The server of this test run, started on first use.</summary>
    public static Task<S3Server> SharedAsync() => Shared.Value;

    /// <summary>Creates a bucket with a new name and returns the name.</summary>
    public Task<string> CreateBucketAsync() => _process.CreateBucketAsync();

    /// <summary>The Outputs:* settings that point a server at <paramref name="bucket"/>.</summary>
    public Dictionary<string, string?> Settings(string bucket) => _process.Settings(bucket);

    /// <summary>The same as KEY=VALUE, for a <c>serve</c> process (ChildServers, ServerProcess).</summary>
    public string[] ServeSettings(string bucket) => _process.ServeSettings(bucket);

    /// <summary>A client of the server (path-style, as the product's), for a test to look into or change a bucket.</summary>
    public AmazonS3Client Client() => _process.Client();

    /// <summary>Every key in the bucket under <paramref name="prefix"/>, with its size.</summary>
    public Task<Dictionary<string, long>> ListAsync(string bucket, string prefix = "") => _process.ListAsync(bucket, prefix);

    private static async Task<S3Server> StartAsync()
    {
        if (Missing is { } why) throw new InvalidOperationException($"The S3 server cannot start: {why}");
        var process = await S3rverProcess.StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => process.Dispose();
        return new S3Server(process);
    }
}

/// <summary>A test that needs <see cref="S3Server"/>: skipped, saying why, when it cannot run, unless NEWBIE_REQUIRE_S3 is set.</summary>
public sealed class S3FactAttribute : FactAttribute
{
    public S3FactAttribute()
    {
        if (S3Server.Missing is { } why && Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_S3") is not { Length: > 0 }) Skip = why;
    }
}
