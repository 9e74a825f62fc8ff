using System.Net;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using NewBie.Host.Jobs;

namespace NewBie.Host.Outputs;

/// <summary>
/// Outputs as objects in an S3-compatible bucket (AWS, MinIO, Ceph, …), path-style. A PUT is atomic on every S3 server:
/// a reader sees the old object, the new one, or none, never half. Write failures are told apart: a full store or a
/// bucket quota is insufficient_storage, anything else (bucket gone, server down, credentials refused)
/// outputs_unavailable.
/// </summary>
public sealed class S3OutputBlobs : IOutputBlobs, IDisposable
{
    /// <summary>Most keys in one DeleteObjects request (the S3 limit).</summary>
    private const int DeleteBatch = 1000;

    private readonly AmazonS3Client _client;
    private readonly string _bucket;

    public S3OutputBlobs(S3OutputsOptions options)
    {
        _bucket = options.Bucket!;
        Location = $"bucket {options.Bucket} at {options.ServiceUrl}";
        _client = new AmazonS3Client(new BasicAWSCredentials(options.AccessKey, options.SecretKey), new AmazonS3Config
        {
            ServiceURL = options.ServiceUrl,
            ForcePathStyle = true,
            AuthenticationRegion = options.Region,
            // The SDK's default CRC checksums on every request (2025) are not understood by many S3-compatible servers;
            // only the requests that S3 itself requires them for (DeleteObjects) carry one.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            // A job waits on its write: a server that does not answer fails it in bounded time (a retry included).
            Timeout = TimeSpan.FromSeconds(30),
            MaxErrorRetry = 2,
        });
    }

    public string Location { get; }

    public string? LocalFolder => null;

    public async Task PutAsync(string key, byte[] bytes, CancellationToken cancellationToken)
    {
        await Guard($"the write of {key}", cancellationToken, () => _client.PutObjectAsync(new PutObjectRequest
            {
                BucketName = _bucket,
                Key = key,
                InputStream = new MemoryStream(bytes, writable: false),
                ContentType = key.EndsWith(".png", StringComparison.Ordinal) ? "image/png" : "application/octet-stream",
                // One signed body instead of aws-chunked framing, which not every S3-compatible server decodes.
                UseChunkEncoding = false,
            }, cancellationToken));
    }

    public async Task<OutputBlob?> OpenAsync(string key, CancellationToken cancellationToken)
    {
        try
        {
            var response = await Guard($"the read of {key}", cancellationToken,
                () => _client.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = key }, cancellationToken));
            return new OutputBlob(response.ResponseStream, response.ContentLength,
                response.LastModified is { } modified ? new DateTimeOffset(modified) : DateTimeOffset.UnixEpoch);
        }
        catch (OutputStoreException e) when (e.InnerException is AmazonS3Exception { StatusCode: HttpStatusCode.NotFound, ErrorCode: "NoSuchKey" or "NotFound" })
        {
            return null;
        }
    }

    public async Task<IReadOnlyDictionary<string, long>> ListAsync(string prefix, CancellationToken cancellationToken)
    {
        var keys = new Dictionary<string, long>(StringComparer.Ordinal);
        var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = prefix };
        ListObjectsV2Response page;
        do
        {
            page = await Guard($"the listing of {prefix}", cancellationToken, () => _client.ListObjectsV2Async(request, cancellationToken));
            foreach (var o in page.S3Objects ?? []) keys[o.Key] = o.Size ?? 0;
            request.ContinuationToken = page.NextContinuationToken;
        } while (page.IsTruncated == true);
        return keys;
    }

    public async Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken)
    {
        foreach (var batch in keys.Chunk(DeleteBatch))
        {
            var response = await Guard($"the delete of {batch.Length} objects", cancellationToken, () => _client.DeleteObjectsAsync(new DeleteObjectsRequest
            {
                BucketName = _bucket,
                Objects = batch.Select(k => new KeyVersion { Key = k }).ToList(),
                Quiet = true,
            }, cancellationToken));
            // A multi-object delete answers 200 and lists the keys it could not delete.
            if (response.DeleteErrors is { Count: > 0 } errors)
                throw new OutputStoreException(JobErrorCodes.OutputsUnavailable,
                    $"The outputs {Location} did not delete {errors.Count} objects, e.g. {errors[0].Key}: {errors[0].Code} {errors[0].Message}");
        }
    }

    public async Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var keys = await ListAsync(prefix, cancellationToken);
        await DeleteAsync(keys.Keys.ToList(), cancellationToken);
        return keys.Values.Sum();
    }

    /// <summary>Null when the bucket answers to these credentials, else why not (for /readyz).</summary>
    public async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _client.HeadBucketAsync(new HeadBucketRequest { BucketName = _bucket }, cancellationToken);
            return null;
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            return $"the outputs {Location} are unreachable: {Describe(e)}";
        }
    }

    public void Dispose() => _client.Dispose();

    /// <summary>Runs one request; what a store that is gone, down, full or refusing throws becomes an <see cref="OutputStoreException"/>.</summary>
    private async Task<T> Guard<T>(string what, CancellationToken cancellationToken, Func<Task<T>> request)
    {
        try
        {
            return await request();
        }
        catch (Exception e) when (IsStoreFailure(e, cancellationToken))
        {
            throw new OutputStoreException(IsFull(e) ? JobErrorCodes.InsufficientStorage : JobErrorCodes.OutputsUnavailable,
                $"The outputs {Location} failed {what}: {Describe(e)}", e);
        }
    }

    /// <summary>A cancel of our own is not a store failure.</summary>
    private static bool IsStoreFailure(Exception e, CancellationToken cancellationToken) =>
        e is AmazonServiceException or AmazonClientException or HttpRequestException or IOException
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);

    /// <summary>507 or a quota error code (S3's QuotaExceeded, MinIO's XMinioStorageFull, XMinioAdminBucketQuotaExceeded).</summary>
    internal static bool IsFull(Exception e) => e is AmazonServiceException s
        && (s.StatusCode == HttpStatusCode.InsufficientStorage
            || s.ErrorCode is { } code && (code.Contains("Quota", StringComparison.OrdinalIgnoreCase) || code.Contains("StorageFull", StringComparison.OrdinalIgnoreCase)));

    private static string Describe(Exception e) => e switch
    {
        AmazonServiceException s => $"{(int)s.StatusCode} {s.ErrorCode} {s.Message}".Trim(),
        OperationCanceledException => "no answer in time",
        _ => e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message,
    };
}
