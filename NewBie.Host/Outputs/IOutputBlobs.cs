namespace NewBie.Host.Outputs;

/// <summary>
/// Where the bytes of the outputs live: files under a folder (<see cref="FolderOutputBlobs"/>) or objects in an
/// S3-compatible bucket (<see cref="S3OutputBlobs"/>). Plain storage, no policy: keys ("u&lt;hash&gt;/&lt;job&gt;/0.png",
/// '/'-separated) are made only by <see cref="OutputStore"/>, which puts the rules on top (all of a job's images or none,
/// thumbnails, the per-user byte count). Its contract is <c>NewBie.Host.Tests.Outputs.OutputBlobsContract</c>.
/// </summary>
public interface IOutputBlobs
{
    /// <summary>Where they are, for messages: the folder, or the bucket and its server.</summary>
    string Location { get; }

    /// <summary>The folder when the outputs are local files (the free-space check and the write probe cover it), else null.</summary>
    string? LocalFolder { get; }

    /// <summary>
    /// Stores <paramref name="bytes"/> under <paramref name="key"/>, replacing what was there; a reader never sees half
    /// of it. A failure for want of room or of the store itself is an <see cref="OutputStoreException"/>.
    /// </summary>
    Task PutAsync(string key, byte[] bytes, CancellationToken cancellationToken);

    /// <summary>The stored bytes, or null when there is nothing under <paramref name="key"/>. Reads, lists and deletes that fail for the store's sake throw <see cref="OutputStoreException"/> too.</summary>
    Task<OutputBlob?> OpenAsync(string key, CancellationToken cancellationToken);

    /// <summary>Every key that starts with <paramref name="prefix"/> (which ends with '/'), with its size in bytes.</summary>
    Task<IReadOnlyDictionary<string, long>> ListAsync(string prefix, CancellationToken cancellationToken);

    /// <summary>Deletes the keys; absent ones are no error.</summary>
    Task DeleteAsync(IReadOnlyCollection<string> keys, CancellationToken cancellationToken);

    /// <summary>Deletes everything under <paramref name="prefix"/> (which ends with '/'); returns the bytes freed.</summary>
    Task<long> DeletePrefixAsync(string prefix, CancellationToken cancellationToken);
}

/// <summary>Stored bytes being read; disposing the content ends the read.</summary>
public sealed record OutputBlob(Stream Content, long Length, DateTimeOffset LastModified);

/// <summary>
/// The output store failed: <see cref="Code"/> is the error code, <c>insufficient_storage</c> (a full volume, a bucket
/// over its quota) or <c>outputs_unavailable</c> (the bucket is gone, the server is down or refuses). A job whose write
/// fails so ends failed with that code; a request that needs the store meanwhile is answered 503.
/// </summary>
public sealed class OutputStoreException(string code, string message, Exception? inner = null) : IOException(message, inner)
{
    public string Code { get; } = code;
}
