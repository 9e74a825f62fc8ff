using System.Diagnostics;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace NewBie.Host.Tests;

/// <summary>
/// The real S3-compatible server of the test run: s3rver (npm, pinned in NewBie.Host.Tests/node/package.json), started
/// once per test process on a free loopback port, serving a temp folder, and stopped with the process (it exits when
/// its standard input closes, so not even a killed test host leaves it behind).
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
    /// <summary>s3rver's built-in account; it checks the access key, not the signature of a request (see the README).</summary>
    public const string AccessKey = "S3RVER", SecretKey = "S3RVER", Region = "us-east-1";

    private static readonly Lazy<Task<S3Server>> Shared = new(StartAsync);

    private readonly Process _process;

    private S3Server(Process process, string serviceUrl, string folder)
    {
        _process = process;
        ServiceUrl = serviceUrl;
        Folder = folder;
    }

    /// <summary>http://127.0.0.1:PORT</summary>
    public string ServiceUrl { get; }

    /// <summary>Where s3rver keeps the buckets' objects.</summary>
    public string Folder { get; }

    /// <summary>Why the server cannot run here, or null when it can.</summary>
    public static string? Missing { get; } =
        NodeScripts.Missing ?? (Directory.Exists(Path.Combine(NodeScripts.Folder!, "node_modules", "s3rver")) ? null
            : $"s3rver is not installed: run `npm ci` in {NodeScripts.Folder} (.ci/run does)");

    /// <summary>The server of this test run, started on first use.</summary>
    public static Task<S3Server> SharedAsync() => Shared.Value;

    /// <summary>Creates a bucket with a new name and returns the name.</summary>
    public async Task<string> CreateBucketAsync()
    {
        var name = "t-" + Guid.NewGuid().ToString("N")[..20];
        using var client = Client();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>The Outputs:* settings that point a server at <paramref name="bucket"/>.</summary>
    public Dictionary<string, string?> Settings(string bucket) => new()
    {
        ["Outputs:Provider"] = "s3",
        ["Outputs:S3:ServiceUrl"] = ServiceUrl,
        ["Outputs:S3:Bucket"] = bucket,
        ["Outputs:S3:Region"] = Region,
        ["Outputs:S3:AccessKey"] = AccessKey,
        ["Outputs:S3:SecretKey"] = SecretKey,
    };

    /// <summary>The same as KEY=VALUE, for a <c>serve</c> process (ChildServers, ServerProcess).</summary>
    public string[] ServeSettings(string bucket) => Settings(bucket).Select(s => $"{s.Key}={s.Value}").ToArray();

    /// <summary>A client of the server (path-style, as the product's), for a test to look into or change a bucket.</summary>
    public AmazonS3Client Client() => new(new BasicAWSCredentials(AccessKey, SecretKey), new AmazonS3Config
    {
        ServiceURL = ServiceUrl,
        ForcePathStyle = true,
        AuthenticationRegion = Region,
    });

    /// <summary>Every key in the bucket under <paramref name="prefix"/>, with its size.</summary>
    public async Task<Dictionary<string, long>> ListAsync(string bucket, string prefix = "")
    {
        using var client = Client();
        var keys = new Dictionary<string, long>(StringComparer.Ordinal);
        var request = new ListObjectsV2Request { BucketName = bucket, Prefix = prefix };
        ListObjectsV2Response page;
        do
        {
            page = await client.ListObjectsV2Async(request);
            foreach (var o in page.S3Objects ?? []) keys[o.Key] = o.Size ?? 0;
            request.ContinuationToken = page.NextContinuationToken;
        } while (page.IsTruncated == true);
        return keys;
    }

    private static async Task<S3Server> StartAsync()
    {
        if (Missing is { } why) throw new InvalidOperationException($"The S3 server cannot start: {why}");
        var folder = Directory.CreateTempSubdirectory("newbie-s3-").FullName;
        // s3rver's listing continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider: without it a
        // listing of more than 1000 keys fails with InternalError.
        var start = new ProcessStartInfo("node", ["--openssl-legacy-provider", "s3-server.cjs", folder])
        {
            WorkingDirectory = NodeScripts.Folder!,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        string? line;
        try
        {
            line = await process.StandardOutput.ReadLineAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            line = null;
        }
        if (line is null)
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"s3rver did not start: {await stderr}");
        }
        var url = JsonDocument.Parse(line).RootElement.GetProperty("url").GetString()!;
        var server = new S3Server(process, url, folder);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    private void Stop()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(5))) _process.Kill(entireProcessTree: true);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            // Already gone.
        }
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
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
