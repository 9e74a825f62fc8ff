namespace NewBie.Host.Outputs;

/// <summary>Where the images go (section "Outputs"). Restart needed for every setting.</summary>
public sealed class OutputsOptions
{
    public const string Section = "Outputs";

    public const string FolderProvider = "folder", S3Provider = "s3";

    /// <summary>
    /// "folder" (default): files under the data folder's outputs/ (which may be a shared mount); "s3": objects in the
    /// S3-compatible bucket of <see cref="S3"/>.
    /// </summary>
    public string Provider { get; set; } = FolderProvider;

    public S3OutputsOptions S3 { get; set; } = new();

    /// <summary>
    /// How long a user's byte count (the storage cap's measure) is trusted before the outputs are listed again. This
    /// process keeps it exact for its own writes and deletes; the listing catches those of other nodes and of hands.
    /// Default 5 minutes.
    /// </summary>
    public TimeSpan UsageRefresh { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>Outputs:S3, read when Outputs:Provider is s3. Addressing is path-style (http://host/bucket/key), which every S3-compatible server takes.</summary>
public sealed class S3OutputsOptions
{
    /// <summary>The server's base URL, e.g. http://127.0.0.1:9000 for MinIO or https://s3.eu-central-1.amazonaws.com. Required.</summary>
    public string? ServiceUrl { get; set; }

    /// <summary>An existing bucket; the server never creates one (a misspelt name would silently start an empty one). Required.</summary>
    public string? Bucket { get; set; }

    /// <summary>The signing region. Default us-east-1, which MinIO and most S3-compatible servers expect.</summary>
    public string Region { get; set; } = "us-east-1";

    /// <summary>Required.</summary>
    public string? AccessKey { get; set; }

    /// <summary>Required.</summary>
    public string? SecretKey { get; set; }
}
