using System.Text.Json;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>Hangfire's connection to <see cref="LiteDbStorage"/>: reads, direct writes and the dequeue.</summary>
internal sealed class LiteDbConnection(LiteDbStorage storage) : JobStorageConnection
{
    public override IWriteOnlyTransaction CreateWriteTransaction() => new LiteDbWriteTransaction(storage, this);

    public override IDisposable AcquireDistributedLock(string resource, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(resource);
        return storage.Locks.Acquire(resource, this, timeout);
    }

    // Jobs

    public override string CreateExpiredJob(Job job, IDictionary<string, string> parameters, DateTime createdAt, TimeSpan expireIn)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(parameters);
        var id = storage.NextJobId();
        storage.Write(() => storage.InsertJobs([NewJob(id, job, parameters, createdAt, expireIn)]));
        return LiteDbStorage.JobKey(id);
    }

    public override IFetchedJob FetchNextJob(string[] queues, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queues);
        if (queues.Length == 0) throw new ArgumentException("At least one queue is required.", nameof(queues));
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // Take the signal before looking, so an enqueue between the look and the wait still wakes us.
            var signal = storage.Signal.Next(queues);
            if (storage.TryClaim(queues) is { } row) return new LiteFetchedJob(storage, row);
            storage.RaiseFetcherWaiting(queues);
            signal.Wait(storage.Options.QueuePollInterval, cancellationToken);
        }
    }

    public override void SetJobParameter(string id, string name, string? value)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(name);
        storage.Write(() =>
        {
            var job = FindJob(storage, id) ?? throw new InvalidOperationException($"Background job '{id}' does not exist.");
            SetParameter(job, name, value);
            storage.Jobs.Update(job);
        });
    }

    public override string? GetJobParameter(string id, string name)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(name);
        var job = FindJob(storage, id);
        return job == null ? null : ReadDictionary(job.Parameters).GetValueOrDefault(name);
    }

    public override JobData? GetJobData(string jobId)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        var doc = FindJob(storage, jobId);
        if (doc == null) return null;
        var (job, invocation, error) = LoadJob(doc.InvocationData);
        return new JobData
        {
            Job = job,
            InvocationData = invocation,
            LoadException = error,
            State = doc.StateName,
            CreatedAt = doc.CreatedAt,
            ParametersSnapshot = ReadDictionary(doc.Parameters),
        };
    }

    public override StateData? GetStateData(string jobId)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        var doc = FindJob(storage, jobId);
        if (doc?.StateName == null) return null;
        return new StateData
        {
            Name = doc.StateName,
            Reason = doc.StateReason,
            Data = new Dictionary<string, string>(ReadDictionary(doc.StateData)!, StringComparer.OrdinalIgnoreCase),
        };
    }

    // Servers

    public override void AnnounceServer(string serverId, ServerContext context)
    {
        ArgumentNullException.ThrowIfNull(serverId);
        ArgumentNullException.ThrowIfNull(context);
        var now = DateTime.UtcNow;
        storage.Write(() => storage.Servers.Upsert(new ServerDocument
        {
            Id = serverId,
            WorkerCount = context.WorkerCount,
            Queues = context.Queues ?? [],
            StartedAt = now,
            Heartbeat = now,
        }));
    }

    public override void RemoveServer(string serverId)
    {
        ArgumentNullException.ThrowIfNull(serverId);
        storage.Write(() => storage.Servers.Delete(serverId));
    }

    public override void Heartbeat(string serverId)
    {
        ArgumentNullException.ThrowIfNull(serverId);
        var found = storage.Write(() =>
        {
            var server = storage.Servers.FindById(serverId);
            if (server == null) return false;
            server.Heartbeat = DateTime.UtcNow;
            return storage.Servers.Update(server);
        });
        // Tells the Hangfire server it was removed as timed out, so that it announces itself again.
        if (!found) throw new BackgroundServerGoneException();
    }

    public override int RemoveTimedOutServers(TimeSpan timeOut)
    {
        if (timeOut < TimeSpan.Zero) throw new ArgumentException("The timeout must not be negative.", nameof(timeOut));
        var cutoff = DateTime.UtcNow - timeOut;
        return storage.Write(() => storage.Servers.DeleteMany(s => s.Heartbeat < cutoff));
    }

    // Sets

    public override HashSet<string> GetAllItemsFromSet(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Sets.Find(s => s.Key == key).Select(s => s.Value).ToHashSet(StringComparer.Ordinal);
    }

    public override string? GetFirstByLowestScoreFromSet(string key, double fromScore, double toScore) =>
        GetFirstByLowestScoreFromSet(key, fromScore, toScore, 1).FirstOrDefault();

    public override List<string> GetFirstByLowestScoreFromSet(string key, double fromScore, double toScore, int count)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (toScore < fromScore) throw new ArgumentException("The 'toScore' value must be higher or equal to the 'fromScore' value.", nameof(toScore));
        if (count <= 0) throw new ArgumentOutOfRangeException(nameof(count), count, "must be positive");
        return storage.Sets.Find(s => s.Key == key && s.Score >= fromScore && s.Score <= toScore)
            .OrderBy(s => s.Score).ThenBy(s => s.Value, StringComparer.Ordinal)
            .Take(count).Select(s => s.Value).ToList();
    }

    public override long GetSetCount(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Sets.LongCount(s => s.Key == key);
    }

    public override long GetSetCount(IEnumerable<string> keys, int limit)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (limit < 0) throw new ArgumentOutOfRangeException(nameof(limit), limit, "must not be negative");
        long total = 0;
        foreach (var key in keys)
        {
            if (total >= limit) break;
            total += GetSetCount(key);
        }
        return Math.Min(total, limit);
    }

    public override bool GetSetContains(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return storage.Sets.FindById(LiteDbWriteTransaction.SetId(key, value)) != null;
    }

    public override List<string> GetRangeFromSet(string key, int startingFrom, int endingAt)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Sets.Find(s => s.Key == key)
            .OrderBy(s => s.Score).ThenBy(s => s.Value, StringComparer.Ordinal)
            .Select(s => s.Value).Skip(Math.Max(0, startingFrom)).Take(Math.Max(0, endingAt - startingFrom + 1)).ToList();
    }

    public override TimeSpan GetSetTtl(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Ttl(storage.Sets.Find(s => s.Key == key && s.ExpireAt != null).Select(s => s.ExpireAt));
    }

    // Hashes

    public override void SetRangeInHash(string key, IEnumerable<KeyValuePair<string, string>> keyValuePairs)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(keyValuePairs);
        var pairs = keyValuePairs.ToList();
        storage.Write(() => LiteDbWriteTransaction.SetHashFields(storage, key, pairs));
    }

    public override Dictionary<string, string>? GetAllEntriesFromHash(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var fields = storage.Hashes.Find(h => h.Key == key).ToList();
        return fields.Count == 0 ? null : fields.ToDictionary(h => h.Field, h => h.Value!, StringComparer.Ordinal);
    }

    public override string? GetValueFromHash(string key, string name)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(name);
        return storage.Hashes.FindById(LiteDbWriteTransaction.HashId(key, name))?.Value;
    }

    public override long GetHashCount(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Hashes.LongCount(h => h.Key == key);
    }

    public override TimeSpan GetHashTtl(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Ttl(storage.Hashes.Find(h => h.Key == key && h.ExpireAt != null).Select(h => h.ExpireAt));
    }

    // Lists (newest first)

    public override long GetListCount(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Lists.LongCount(l => l.Key == key);
    }

    public override List<string> GetAllItemsFromList(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Lists.Find(l => l.Key == key).OrderByDescending(l => l.Id).Select(l => l.Value!).ToList();
    }

    public override List<string> GetRangeFromList(string key, int startingFrom, int endingAt)
    {
        ArgumentNullException.ThrowIfNull(key);
        return GetAllItemsFromList(key).Skip(Math.Max(0, startingFrom)).Take(Math.Max(0, endingAt - startingFrom + 1)).ToList();
    }

    public override TimeSpan GetListTtl(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Ttl(storage.Lists.Find(l => l.Key == key && l.ExpireAt != null).Select(l => l.ExpireAt));
    }

    // Counters

    public override long GetCounter(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return storage.Counters.FindById(key)?.Value ?? 0;
    }

    public override DateTime GetUtcDateTime() => DateTime.UtcNow;

    // Shared with the transaction and the monitoring API.

    internal static JobDocument NewJob(long id, Job job, IDictionary<string, string> parameters, DateTime createdAt, TimeSpan expireIn) => new()
    {
        Id = id,
        InvocationData = InvocationData.SerializeJob(job).SerializePayload(),
        Parameters = JsonSerializer.Serialize(new Dictionary<string, string?>(parameters!, StringComparer.Ordinal)),
        CreatedAt = createdAt.ToUniversalTime(),
        ExpireAt = createdAt.ToUniversalTime() + expireIn,
    };

    internal static JobDocument? FindJob(LiteDbStorage storage, string jobId) =>
        LiteDbStorage.TryParseJobId(jobId, out var id) ? storage.Jobs.FindById(id) : null;

    /// <summary>Sets one of the job's parameters on the document; the caller writes it.</summary>
    internal static void SetParameter(JobDocument job, string name, string? value)
    {
        var parameters = ReadDictionary(job.Parameters);
        parameters[name] = value;
        job.Parameters = JsonSerializer.Serialize(parameters);
    }

    internal static Dictionary<string, string?> ReadDictionary(string? json) =>
        string.IsNullOrEmpty(json)
            ? new Dictionary<string, string?>(StringComparer.Ordinal)
            : new Dictionary<string, string?>(JsonSerializer.Deserialize<Dictionary<string, string?>>(json)!, StringComparer.Ordinal);

    internal static (Job? Job, InvocationData? Invocation, JobLoadException? Error) LoadJob(string payload)
    {
        InvocationData? invocation = null;
        try
        {
            invocation = InvocationData.DeserializePayload(payload);
            return (invocation.DeserializeJob(), invocation, null);
        }
        catch (JobLoadException e)
        {
            return (null, invocation, e);
        }
    }

    /// <summary>Time left until the earliest expiry; negative when nothing expires (Hangfire's convention).</summary>
    private static TimeSpan Ttl(IEnumerable<DateTime?> expiries)
    {
        var first = expiries.Min();
        return first == null ? TimeSpan.FromSeconds(-1) : first.Value - DateTime.UtcNow;
    }
}
