namespace NewBie.Host.HangfireStorage.Postgres;

/// <summary>Settings of the Hangfire storage on PostgreSQL and of its fair queues. Read once when the storage opens.</summary>
public sealed class PostgresQueueOptions
{
    /// <summary>Schema of Hangfire's tables and of the fair queues' own (fair_*), in the app's database. Default "hangfire".</summary>
    public string SchemaName { get; init; } = "hangfire";

    /// <summary>Queues whose claim follows <see cref="FairOrder"/> across all nodes instead of FIFO. Default ["gpu"].</summary>
    public IReadOnlyList<string> FairQueues { get; init; } = ["gpu"];

    /// <summary>
    /// A fetched job whose node stopped renewing its claim is claimable again after this long (sliding invisibility:
    /// a live node renews every fifth of it, so a long job is never run twice at once). Default 5 min.
    /// </summary>
    public TimeSpan InvisibilityTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How often an idle fetcher looks again although nothing woke it: long polling (LISTEN/NOTIFY) wakes it at once
    /// for new work, so this bounds only how late a dead node's job is seen once its timeout ran out. A fifth of the
    /// invisibility timeout, at most 5 s.
    /// </summary>
    public TimeSpan QueuePollInterval => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, InvisibilityTimeout.Ticks / 5));

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(SchemaName);
        ArgumentNullException.ThrowIfNull(FairQueues);
        // Hangfire.PostgreSql's own floor for the poll interval is 50 ms.
        if (InvisibilityTimeout < TimeSpan.FromSeconds(1))
            throw new ArgumentOutOfRangeException(nameof(InvisibilityTimeout), InvisibilityTimeout, "must be at least 1 s");
    }
}
