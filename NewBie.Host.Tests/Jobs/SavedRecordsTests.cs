using NewBie.Host.Jobs;
using NewBie.Host.Tests.Storage;

namespace NewBie.Host.Tests.Jobs;

/// <summary>
/// The job store's reads in the embedded mode: a known job's record is read from the database once, and every
/// change the store saves (update, delete) is what the next read returns.
/// </summary>
public sealed class SavedRecordsTests : IDisposable
{
    private readonly LiteDbTestDatabase _db = new();
    private readonly CountingRecords _records;
    private readonly JobStore _store;

    public SavedRecordsTests()
    {
        _records = new CountingRecords(new LiteDbJobRecords(_db.Database));
        _store = new JobStore(_records);
    }

    public void Dispose() => _db.Dispose();

    [Fact]
    public void A_known_jobs_reads_read_the_database_once()
    {
        var id = Insert();

        for (var i = 0; i < 50; i++) Assert.Equal(id, _store.Find(id)?.Id);

        Assert.Equal(1, _records.Reads);
    }

    [Fact]
    public void Each_saved_change_is_what_the_next_read_returns()
    {
        var id = Insert();
        Assert.Equal(JobStatus.Queued, _store.Find(id)!.Status);

        _store.Update(id, j => j.Start(DateTime.UtcNow, memoryWait: null));
        var started = _store.Find(id)!;
        _store.Update(id, j =>
        {
            j.Step = 3;
            return true;
        });
        var stepped = _store.Find(id)!;
        _store.Delete(id);

        Assert.Equal(JobStatus.Running, started.Status);
        Assert.Equal(3, stepped.Step);
        Assert.Null(_store.Find(id));
    }

    [Fact]
    public void A_read_that_began_before_a_change_does_not_keep_its_record()
    {
        var id = Insert();
        // The change is saved after the read found the queued record and before that read's answer could be kept.
        _records.AfterRead = () =>
        {
            _records.AfterRead = null;
            _store.Update(id, j => j.Start(DateTime.UtcNow, memoryWait: null));
        };

        Assert.Equal(JobStatus.Queued, _store.Find(id)!.Status);
        Assert.Equal(JobStatus.Running, _store.Find(id)!.Status);
    }

    private string Insert()
    {
        var draft = new JobRecord
        {
            Id = Guid.NewGuid().ToString("N"),
            UserId = "alice",
            Status = JobStatus.Queued,
            Params = new JobParams { Prompt = "p", Width = 256, Height = 256, Steps = 4, Count = 1 },
            CreatedAt = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc),
        };
        Assert.Equal(SubmitOutcome.Created, _store.Insert(draft, maxQueued: 100).Outcome);
        _records.Reads = 0;
        return draft.Id;
    }

    /// <summary>Counts the reads by id; <see cref="AfterRead"/> runs between a read and its return.</summary>
    private sealed class CountingRecords(IJobRecords inner) : IJobRecords
    {
        public int Reads;

        public Action? AfterRead { get; set; }

        public JobRecord? Find(string id)
        {
            Interlocked.Increment(ref Reads);
            var job = inner.Find(id);
            AfterRead?.Invoke();
            return job;
        }

        public JobRecord? FindByIdempotencyKey(string userId, string key) => inner.FindByIdempotencyKey(userId, key);

        public JobRecord? FindByHangfireJob(string hangfireJobId) => inner.FindByHangfireJob(hangfireJobId);

        public long LastSeq() => inner.LastSeq();

        public void Insert(JobRecord job) => inner.Insert(job);

        public void Update(JobRecord job) => inner.Update(job);

        public void Delete(string id) => inner.Delete(id);

        public IReadOnlyList<JobRecord> WithStatus(JobStatus status) => inner.WithStatus(status);

        public IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit) => inner.Page(userId, status, beforeSeq, limit);

        public IReadOnlyList<JobRecord> FinishedSince(DateTime from) => inner.FinishedSince(from);

        public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) => inner.FinishedBefore(cutoff);
    }
}
