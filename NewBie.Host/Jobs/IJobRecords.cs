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

    /// <summary>
    /// Runs <paramref name="work"/> as one write of this database: what it writes on this thread, through these records
    /// or another store of the same database (a quota charge), is stored together or, if it throws, not at all. The
    /// group commit of submits (<see cref="JobStore.InsertMany"/>). Records without transactions run it as it is.
    /// </summary>
    void InOneWrite(Action work) => work();

    /// <summary>Every job in <paramref name="status"/>, oldest submit first.</summary>
    IReadOnlyList<JobRecord> WithStatus(JobStatus status);

    /// <summary>A user's jobs (everyone's when null), newest submit first, with a submit sequence below <paramref name="beforeSeq"/>.</summary>
    IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit);

    IReadOnlyList<JobRecord> FinishedSince(DateTime from);

    IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff);
}

/// <summary>
/// Job records that several processes write at once (PostgreSQL). What <see cref="JobStore"/>'s lock and in-memory
/// counts give one process, the database gives here: a submit's checks and its insert are one step against every
/// node's submits, a change of a record one step against every node's changes of it, and the counts are the
/// database's. Its contract is <c>NewBie.Host.Tests.Jobs.SharedJobRecordsContract</c>.
/// </summary>
public interface ISharedJobRecords : IJobRecords
{
    /// <summary>
    /// Replays the user's job of the same Idempotency-Key (or reports the conflict), refuses when
    /// <paramref name="maxQueued"/> jobs are queued or the user has <paramref name="maxActiveOfUser"/> queued and
    /// running, or else stores <paramref name="draft"/> with the next submit sequence, after
    /// <paramref name="beforeInsert"/> ran on it (see <see cref="JobStore.Insert"/>). A reader of that job's id on any
    /// node (<see cref="IJobRecords.Find"/>, <see cref="Update"/>) while the submit is under way waits for it, so that a
    /// worker that claims the job <paramref name="beforeInsert"/> queued always finds its record.
    /// </summary>
    (SubmitOutcome Outcome, JobRecord? Job) TryInsert(JobRecord draft, int maxQueued, int? maxActiveOfUser, Action<JobRecord>? beforeInsert = null,
        StorageCap? storageCap = null);

    /// <summary>
    /// Reads the record, applies <paramref name="change"/> and saves it when that returns true, with no other change of it
    /// between; null when it is gone. A change that is not <paramref name="durable"/> (progress) may return before it
    /// reaches the disk: the next durable change of any record makes it durable too, and a crash can lose only it.
    /// </summary>
    JobRecord? Update(string id, Func<JobRecord, bool> change, bool durable = true);

    int CountQueued();

    /// <summary>The user's queued and running jobs and the most bytes their images can take (<see cref="JobParams.LargestBytes"/>).</summary>
    (int Jobs, long Bytes) Active(string userId);
}
