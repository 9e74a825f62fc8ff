using LiteDB;
using NewBie.Host.Storage;

namespace NewBie.Host.Jobs;

/// <summary>Job records in the app's LiteDB file, collection "jobs".</summary>
public sealed class LiteDbJobRecords : IJobRecords
{
    private readonly ILiteCollection<JobRecord> _jobs;

    public LiteDbJobRecords(AppDatabase database)
    {
        _jobs = database.Collection<JobRecord>("jobs");
        _jobs.EnsureIndex(j => j.UserId);
        _jobs.EnsureIndex(j => j.Status);
        _jobs.EnsureIndex(j => j.Seq, unique: true);
        _jobs.EnsureIndex(j => j.IdempotencyKey);
        _jobs.EnsureIndex(j => j.HangfireJobId);
    }

    public JobRecord? Find(string id) => _jobs.FindById(id);

    // The index narrows by key (LiteDB compares strings case-insensitively); the exact match is made here.
    public JobRecord? FindByIdempotencyKey(string userId, string key) =>
        _jobs.Find(Query.EQ(nameof(JobRecord.IdempotencyKey), key)).FirstOrDefault(j => j.UserId == userId && string.Equals(j.IdempotencyKey, key, StringComparison.Ordinal));

    public JobRecord? FindByHangfireJob(string hangfireJobId) =>
        _jobs.Find(Query.EQ(nameof(JobRecord.HangfireJobId), hangfireJobId)).FirstOrDefault(j => j.HangfireJobId == hangfireJobId);

    public long LastSeq() => _jobs.Query().OrderByDescending(j => j.Seq).Limit(1).FirstOrDefault()?.Seq ?? 0;

    public void Insert(JobRecord job) => _jobs.Insert(job);

    public void Update(JobRecord job) => _jobs.Update(job);

    public void Delete(string id) => _jobs.Delete(id);

    public IReadOnlyList<JobRecord> WithStatus(JobStatus status) =>
        _jobs.Find(Query.EQ(nameof(JobRecord.Status), status.ToString())).OrderBy(j => j.Seq).ToList();

    public IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit)
    {
        var query = _jobs.Query();
        if (userId is not null) query = query.Where(j => j.UserId == userId);
        if (status is { } s) query = query.Where(Query.EQ(nameof(JobRecord.Status), s.ToString()));
        if (beforeSeq is { } before) query = query.Where(j => j.Seq < before);
        return query.OrderByDescending(j => j.Seq).Limit(limit).ToList();
    }

    public IReadOnlyList<JobRecord> FinishedSince(DateTime from) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt >= from).ToList();

    public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt < cutoff).Where(j => j.IsFinished).ToList();
}
