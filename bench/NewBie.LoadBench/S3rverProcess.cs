using System.Diagnostics;
using System.Text.Json;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace NewBie.LoadBench;

/// <summary>
/// s3rver (npm, pinned in NewBie.Host.Tests/node/package.json) as a child process on a free loopback port, serving a
/// temp folder: the S3 server of both the test suite (NewBie.Host.Tests/S3Server.cs, which links this file) and the
/// multi-node bench, so that the bench measures the outputs store the tests prove. It exits when its standard input
/// closes, so not even a killed parent leaves it behind.
/// </summary>
internal sealed class S3rverProcess : IDisposable
{
    /// <summary>s3rver's built-in account; it checks the access key, not the signature of a request (see the README).</summary>
    public const string AccessKey = "S3RVER", SecretKey = "S3RVER", Region = "us-east-1";

    private readonly Process _process;

    private S3rverProcess(Process process, string serviceUrl, string folder)
    {
        _process = process;
        ServiceUrl = serviceUrl;
        Folder = folder;
    }

    /// <summary>http://127.0.0.1:PORT</summary>
    public string ServiceUrl { get; }

    /// <summary>Where s3rver keeps the buckets' objects.</summary>
    public string Folder { get; }

    /// <summary>NewBie.Host.Tests/node, found above this assembly's folder; null when absent.</summary>
    public static string? NodeFolder { get; } = FindNodeFolder();

    /// <summary>Why s3rver cannot start here (no node folder, no node_modules/s3rver), or null when it can; node itself is looked for at start.</summary>
    public static string? Missing { get; } =
        NodeFolder is null ? "NewBie.Host.Tests/node was not found above the binaries"
        : !Directory.Exists(Path.Combine(NodeFolder, "node_modules", "s3rver")) ? $"s3rver is not installed: run `npm ci` in {NodeFolder} (.ci/run does)"
        : null;

    /// <summary>Starts s3rver on a new temp folder and returns once it listens.</summary>
    public static async Task<S3rverProcess> StartAsync()
    {
        if (Missing is { } why) throw new InvalidOperationException($"The S3 server cannot start: {why}");
        var folder = Directory.CreateTempSubdirectory("newbie-s3-").FullName;
        // s3rver's listing continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider: without it a
        // listing of more than 1000 keys fails with InternalError.
        var start = new ProcessStartInfo("node", ["--openssl-legacy-provider", "s3-server.cjs", folder])
        {
            WorkingDirectory = NodeFolder!,
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
        return new S3rverProcess(process, url, folder);
    }

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

    /// <summary>The same as KEY=VALUE, for a <c>serve</c> process.</summary>
    public string[] ServeSettings(string bucket) => Settings(bucket).Select(s => $"{s.Key}={s.Value}").ToArray();

    /// <summary>A client of the server (path-style, as the product's), to look into or change a bucket.</summary>
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

    /// <summary>Closes s3rver's standard input (it exits), kills it if it lingers, and deletes its folder.</summary>
    public void Dispose()
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
        _process.Dispose();
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }

    private static string? FindNodeFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "NewBie.Host.Tests", "node");
            if (File.Exists(Path.Combine(candidate, "package.json"))) return candidate;
        }
        return null;
    }
}
