namespace NewBie.Host.Jobs;

/// <summary>
/// Where job records are kept: plain reads and writes, no policy. <see cref="JobStore"/> puts the rules on top (one
/// lock per read-modify-write, caps, idempotency, change events), so another database (PostgreSQL, design §8) only
/// implements this. Its contract is <c>NewBie.Host.Tests.Jobs.JobRecordsContract</c>.
/// </summary>
public interface IJobRecords
{
    JobRecord? Find(string id);

    /// <summary>The user's job submitted with exactly <paramref name="key"/> (ordinal: <c>k1</c> is not <c>K1</c>).</summary>
    JobRecord? FindByIdempotencyKey(string userId, string key);

    JobRecord? FindByHangfireJob(string hangfireJobId);

    /// <summary>The highest submit sequence stored, 0 when none.</summary>
    long LastSeq();

    void Insert(JobRecord job);

    void Update(JobRecord job);

    void Delete(string id);

    /// <summary>Every job in <paramref name="status"/>, oldest submit first.</summary>
    IReadOnlyList<JobRecord> WithStatus(JobStatus status);

    /// <summary>A user's jobs (everyone's when null), newest submit first, with a submit sequence below <paramref name="beforeSeq"/>.</summary>
    IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit);

    IReadOnlyList<JobRecord> FinishedSince(DateTime from);

    IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff);
}
