namespace NewBie.Host.HangfireStorage;

// The LiteDB documents. Dictionaries are kept as JSON strings: Hangfire's parameter and state-data names are
// arbitrary text, and LiteDB field names are not. All times are UTC (the database runs with UtcDate = true).

internal sealed class JobDocument
{
    public long Id { get; set; }
    public string InvocationData { get; set; } = "";
    public string Parameters { get; set; } = "{}";
    public DateTime CreatedAt { get; set; }
    public DateTime? ExpireAt { get; set; }
    public string? StateName { get; set; }
    public string? StateReason { get; set; }
    public string? StateData { get; set; }
    public DateTime? StateAt { get; set; }
}

internal sealed class StateDocument
{
    public long Id { get; set; }
    public long JobId { get; set; }
    public string Name { get; set; } = "";
    public string? Reason { get; set; }
    public DateTime CreatedAt { get; set; }
    public string Data { get; set; } = "{}";
}

internal sealed class QueueDocument
{
    public long Id { get; set; }
    public string Queue { get; set; } = "";
    public long JobId { get; set; }
    public string UserId { get; set; } = "";
    public int Priority { get; set; }
    public long Seq { get; set; }
    public string? Ref { get; set; }
    public DateTime EnqueuedAt { get; set; }
    public DateTime? FetchedAt { get; set; }
    public string? FetchToken { get; set; }
}

/// <summary>Fair-share bookkeeping: the per-queue served counter and each user's last-served tick.</summary>
internal sealed class FairDocument
{
    public string Id { get; set; } = "";
    public long Value { get; set; }
}

internal sealed class SetDocument
{
    public string Id { get; set; } = "";
    public string Key { get; set; } = "";
    public string Value { get; set; } = "";
    public double Score { get; set; }
    public DateTime? ExpireAt { get; set; }
}

internal sealed class HashDocument
{
    public string Id { get; set; } = "";
    public string Key { get; set; } = "";
    public string Field { get; set; } = "";
    public string? Value { get; set; }
    public DateTime? ExpireAt { get; set; }
}

internal sealed class ListDocument
{
    public long Id { get; set; }
    public string Key { get; set; } = "";
    public string? Value { get; set; }
    public DateTime? ExpireAt { get; set; }
}

internal sealed class CounterDocument
{
    public string Id { get; set; } = "";
    public long Value { get; set; }
    public DateTime? ExpireAt { get; set; }
}

internal sealed class ServerDocument
{
    public string Id { get; set; } = "";
    public int WorkerCount { get; set; }
    public string[] Queues { get; set; } = [];
    public DateTime StartedAt { get; set; }
    public DateTime Heartbeat { get; set; }
}

/// <summary>Monotonic sequences (job ids) that never reuse a value, unlike LiteDB's max(_id)+1 auto id.</summary>
internal sealed class SequenceDocument
{
    public string Id { get; set; } = "";
    public long Value { get; set; }
}
