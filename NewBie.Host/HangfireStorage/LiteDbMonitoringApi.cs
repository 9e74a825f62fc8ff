using System.Globalization;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Hangfire.Storage.Monitoring;

namespace NewBie.Host.HangfireStorage;

/// <summary>What the Hangfire dashboard reads. Lists of jobs in a state are newest first.</summary>
internal sealed class LiteDbMonitoringApi(LiteDbStorage storage) : JobStorageMonitor
{
    private const int FirstJobsPerQueue = 5;

    public override IList<QueueWithTopEnqueuedJobsDto> Queues() =>
        storage.Queue.FindAll().Select(q => q.Queue).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)
            .Select(queue => new QueueWithTopEnqueuedJobsDto
            {
                Name = queue,
                Length = EnqueuedCount(queue),
                Fetched = FetchedCount(queue),
                FirstJobs = EnqueuedJobs(queue, 0, FirstJobsPerQueue),
            })
            .ToList();

    public override IList<ServerDto> Servers() =>
        storage.Servers.FindAll().OrderBy(s => s.Id, StringComparer.Ordinal).Select(s => new ServerDto
        {
            Name = s.Id,
            WorkersCount = s.WorkerCount,
            Queues = s.Queues,
            StartedAt = s.StartedAt,
            Heartbeat = s.Heartbeat,
        }).ToList();

    public override JobDetailsDto? JobDetails(string jobId)
    {
        ArgumentNullException.ThrowIfNull(jobId);
        var doc = LiteDbConnection.FindJob(storage, jobId);
        if (doc == null) return null;
        var (job, invocation, error) = LiteDbConnection.LoadJob(doc.InvocationData);
        return new JobDetailsDto
        {
            Job = job,
            InvocationData = invocation,
            LoadException = error,
            CreatedAt = doc.CreatedAt,
            ExpireAt = doc.ExpireAt,
            Properties = LiteDbConnection.ReadDictionary(doc.Parameters)!,
            History = storage.States.Find(s => s.JobId == doc.Id).OrderByDescending(s => s.Id).Select(s => new StateHistoryDto
            {
                StateName = s.Name,
                Reason = s.Reason,
                CreatedAt = s.CreatedAt,
                Data = StateData(s.Data),
            }).ToList(),
        };
    }

    public override StatisticsDto GetStatistics()
    {
        var connection = new LiteDbConnection(storage);
        return new StatisticsDto
        {
            Servers = storage.Servers.LongCount(),
            Queues = storage.Queue.FindAll().Select(q => q.Queue).Distinct(StringComparer.Ordinal).LongCount(),
            Enqueued = CountInState(EnqueuedState.StateName),
            Scheduled = CountInState(ScheduledState.StateName),
            Processing = CountInState(ProcessingState.StateName),
            Failed = CountInState(FailedState.StateName),
            Awaiting = CountInState(AwaitingState.StateName),
            Succeeded = connection.GetCounter("stats:succeeded"),
            Deleted = connection.GetCounter("stats:deleted"),
            Recurring = connection.GetSetCount("recurring-jobs"),
            Retries = connection.GetSetCount("retries"),
        };
    }

    public override JobList<EnqueuedJobDto> EnqueuedJobs(string queue, int from, int perPage)
    {
        ArgumentNullException.ThrowIfNull(queue);
        // The fair queues show their real claim order, so the dashboard agrees with the positions users see.
        var ids = storage.GetFairQueue(queue).Skip(from).Take(perPage).Select(e => e.JobId);
        return List(ids, (doc, job) => new EnqueuedJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            State = doc?.StateName,
            InEnqueuedState = doc?.StateName == EnqueuedState.StateName,
            EnqueuedAt = doc?.StateName == EnqueuedState.StateName ? Date(doc, "EnqueuedAt") : null,
            StateData = doc?.StateName == EnqueuedState.StateName ? StateData(doc.StateData) : null,
        });
    }

    public override JobList<FetchedJobDto> FetchedJobs(string queue, int from, int perPage)
    {
        ArgumentNullException.ThrowIfNull(queue);
        var rows = storage.Queue.Find(q => q.Queue == queue && q.FetchedAt != null).OrderBy(q => q.FetchedAt).Skip(from).Take(perPage).ToList();
        var fetchedAt = rows.ToDictionary(r => LiteDbStorage.JobKey(r.JobId), r => r.FetchedAt);
        return List(rows.Select(r => LiteDbStorage.JobKey(r.JobId)), (doc, job) => new FetchedJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            State = doc?.StateName,
            FetchedAt = doc == null ? null : fetchedAt[LiteDbStorage.JobKey(doc.Id)],
        });
    }

    public override JobList<ProcessingJobDto> ProcessingJobs(int from, int count) =>
        InState(ProcessingState.StateName, from, count, (doc, job, data) => new ProcessingJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InProcessingState = true,
            ServerId = data.GetValueOrDefault("ServerId") ?? data.GetValueOrDefault("ServerName"),
            StartedAt = Date(data, "StartedAt"),
            StateData = data,
        });

    public override JobList<ScheduledJobDto> ScheduledJobs(int from, int count) =>
        InState(ScheduledState.StateName, from, count, (doc, job, data) => new ScheduledJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InScheduledState = true,
            EnqueueAt = Date(data, "EnqueueAt") ?? default,
            ScheduledAt = Date(data, "ScheduledAt"),
            StateData = data,
        });

    public override JobList<SucceededJobDto> SucceededJobs(int from, int count) =>
        InState(SucceededState.StateName, from, count, (doc, job, data) => new SucceededJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InSucceededState = true,
            Result = data.GetValueOrDefault("Result"),
            TotalDuration = Long(data, "PerformanceDuration") is { } run && Long(data, "Latency") is { } wait ? run + wait : null,
            SucceededAt = Date(data, "SucceededAt"),
            StateData = data,
        });

    public override JobList<FailedJobDto> FailedJobs(int from, int count) =>
        InState(FailedState.StateName, from, count, (doc, job, data) => new FailedJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InFailedState = true,
            Reason = doc.StateReason,
            FailedAt = Date(data, "FailedAt"),
            ExceptionType = data.GetValueOrDefault("ExceptionType"),
            ExceptionMessage = data.GetValueOrDefault("ExceptionMessage"),
            ExceptionDetails = data.GetValueOrDefault("ExceptionDetails"),
            StateData = data,
        });

    public override JobList<DeletedJobDto> DeletedJobs(int from, int count) =>
        InState(DeletedState.StateName, from, count, (doc, job, data) => new DeletedJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InDeletedState = true,
            DeletedAt = Date(data, "DeletedAt"),
            StateData = data,
        });

    public override JobList<AwaitingJobDto> AwaitingJobs(int from, int count) =>
        InState(AwaitingState.StateName, from, count, (doc, job, data) => new AwaitingJobDto
        {
            Job = job.Job,
            InvocationData = job.Invocation,
            LoadException = job.Error,
            InAwaitingState = true,
            AwaitingAt = doc.StateAt,
            ParentStateName = data.GetValueOrDefault("ParentId") is { } parent ? LiteDbConnection.FindJob(storage, parent)?.StateName : null,
            StateData = data,
        });

    public override long ScheduledCount() => CountInState(ScheduledState.StateName);

    public override long EnqueuedCount(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return storage.Queue.LongCount(q => q.Queue == queue && q.FetchedAt == null);
    }

    public override long FetchedCount(string queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        return storage.Queue.LongCount(q => q.Queue == queue && q.FetchedAt != null);
    }

    public override long FailedCount() => CountInState(FailedState.StateName);

    public override long ProcessingCount() => CountInState(ProcessingState.StateName);

    public override long SucceededListCount() => CountInState(SucceededState.StateName);

    public override long DeletedListCount() => CountInState(DeletedState.StateName);

    public override long AwaitingCount() => CountInState(AwaitingState.StateName);

    public override IDictionary<DateTime, long> SucceededByDatesCount() => ByDates("succeeded");

    public override IDictionary<DateTime, long> FailedByDatesCount() => ByDates("failed");

    public override IDictionary<DateTime, long> DeletedByDatesCount() => ByDates("deleted");

    public override IDictionary<DateTime, long> HourlySucceededJobs() => ByHours("succeeded");

    public override IDictionary<DateTime, long> HourlyFailedJobs() => ByHours("failed");

    public override IDictionary<DateTime, long> HourlyDeletedJobs() => ByHours("deleted");

    private long CountInState(string state) => storage.Jobs.LongCount(j => j.StateName == state);

    // Hangfire's StatisticsHistoryAttribute keeps one counter per UTC day and per UTC hour.
    private Dictionary<DateTime, long> ByDates(string kind)
    {
        var today = DateTime.UtcNow.Date;
        return Enumerable.Range(0, 7).Select(i => today.AddDays(-i))
            .ToDictionary(day => day, day => CounterValue($"stats:{kind}:{day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}"));
    }

    private Dictionary<DateTime, long> ByHours(string kind)
    {
        var now = DateTime.UtcNow;
        var hour = new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc);
        return Enumerable.Range(0, 24).Select(i => hour.AddHours(-i))
            .ToDictionary(h => h, h => CounterValue($"stats:{kind}:{h.ToString("yyyy-MM-dd-HH", CultureInfo.InvariantCulture)}"));
    }

    private long CounterValue(string key) => storage.Counters.FindById(key)?.Value ?? 0;

    private JobList<T> InState<T>(string state, int from, int count, Func<JobDocument, (Job? Job, InvocationData? Invocation, JobLoadException? Error), Dictionary<string, string>, T> map)
    {
        var docs = storage.Jobs.Find(j => j.StateName == state).OrderByDescending(j => j.Id).Skip(from).Take(count).ToList();
        return new JobList<T>(docs.Select(doc => new KeyValuePair<string, T>(
            LiteDbStorage.JobKey(doc.Id), map(doc, LiteDbConnection.LoadJob(doc.InvocationData), StateData(doc.StateData)))));
    }

    // A queue may still point at a job that expired meanwhile; it is listed without details, as the dashboard expects.
    private JobList<T> List<T>(IEnumerable<string> ids, Func<JobDocument?, (Job? Job, InvocationData? Invocation, JobLoadException? Error), T> map) =>
        new(ids.Select(id =>
        {
            var doc = LiteDbConnection.FindJob(storage, id);
            var job = doc == null ? (null, null, null) : LiteDbConnection.LoadJob(doc.InvocationData);
            return new KeyValuePair<string, T>(id, map(doc, job));
        }));

    private static Dictionary<string, string> StateData(string? json) =>
        new(LiteDbConnection.ReadDictionary(json)!, StringComparer.OrdinalIgnoreCase);

    private static DateTime? Date(JobDocument doc, string name) => Date(StateData(doc.StateData), name);

    private static DateTime? Date(Dictionary<string, string> data, string name) =>
        data.GetValueOrDefault(name) is { } raw ? JobHelper.DeserializeNullableDateTime(raw) : null;

    private static long? Long(Dictionary<string, string> data, string name) =>
        long.TryParse(data.GetValueOrDefault(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;
}
