namespace NewBie.Host.HangfireStorage;

/// <summary>Settings of <see cref="LiteDbStorage"/>. Read once at construction.</summary>
public sealed class LiteDbStorageOptions
{
    /// <summary>
    /// How often an idle FetchNextJob looks at the queues although nobody signalled new work. Enqueues made through
    /// this storage wake fetchers at once; the poll only bounds the delay if a signal were ever missed. Default 2 s.
    /// </summary>
    public TimeSpan QueuePollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long the expiration manager waits for its distributed lock before skipping a sweep (several Hangfire
    /// servers in one process share one storage and each runs the storage-wide processes). Default 1 min.
    /// </summary>
    public TimeSpan DistributedLockTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often expired jobs, sets, lists, hashes and counters are deleted. Default 30 min.</summary>
    public TimeSpan JobExpirationCheckInterval { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Queues whose dequeue follows <see cref="FairOrder"/> instead of FIFO. Default ["gpu"].</summary>
    public IReadOnlyList<string> FairQueues { get; init; } = ["gpu"];

    internal void Validate()
    {
        if (QueuePollInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(QueuePollInterval), QueuePollInterval, "must be positive");
        if (DistributedLockTimeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(DistributedLockTimeout), DistributedLockTimeout, "must not be negative");
        if (JobExpirationCheckInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(JobExpirationCheckInterval), JobExpirationCheckInterval, "must be positive");
        ArgumentNullException.ThrowIfNull(FairQueues);
    }
}

/// <summary>
/// Names of the job parameters that place a job in a fair queue. Set them when creating the job
/// (<c>IBackgroundJobClientV2.Create(job, state, parameters)</c>); Hangfire stores them JSON-serialized.
/// Missing ones mean user "", priority 1 and the job id as sequence.
/// </summary>
public static class FairQueueParameters
{
    /// <summary>The owner whose turn the job waits for (string).</summary>
    public const string UserId = "UserId";

    /// <summary>Priority class, higher first: 2 high, 1 normal, 0 low (int).</summary>
    public const string Priority = "Priority";

    /// <summary>Submit sequence, FIFO within a user; keep it across retries (long).</summary>
    public const string Seq = "Seq";

    /// <summary>The caller's own reference to the job (string), handed back in <see cref="FairQueueEntry.Ref"/>.</summary>
    public const string Ref = "Ref";

    /// <summary>The four names, for a storage that reads them with one query.</summary>
    internal static readonly string[] All = [UserId, Priority, Seq, Ref];

    /// <summary>A job's place from its stored (JSON-serialized) parameters; a missing or unreadable one is null.</summary>
    internal static (string? UserId, int? Priority, long? Seq, string? Ref) Read(IReadOnlyDictionary<string, string?> parameters) =>
        (Parse<string>(parameters, UserId), Parse<int?>(parameters, Priority), Parse<long?>(parameters, Seq), Parse<string>(parameters, Ref));

    // Hangfire stores parameters JSON-serialized (SerializationOption.User); a value that does not parse is ignored.
    private static T? Parse<T>(IReadOnlyDictionary<string, string?> parameters, string name)
    {
        if (parameters.GetValueOrDefault(name) is not { } raw) return default;
        try
        {
            return Hangfire.Common.SerializationHelper.Deserialize<T>(raw, Hangfire.Common.SerializationOption.User);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return default;
        }
    }
}

/// <summary>Thrown when a second <see cref="LiteDbStorage"/> opens a database another one (in any process) holds.</summary>
public sealed class StorageInUseException(string message, Exception inner) : IOException(message, inner);
