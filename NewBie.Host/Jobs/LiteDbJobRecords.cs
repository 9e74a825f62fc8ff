using LiteDB;
using NewBie.Host.Storage;

namespace NewBie.Host.Jobs;

/// <summary>Job records in the app's LiteDB file, collection "jobs".</summary>
public sealed class LiteDbJobRecords : IJobRecords
{
    // A user's list pages are ranges of these compound keys, read newest first in index order up to the page's limit:
    // no page reads or sorts more than it returns, however many jobs the user or the server has. The separator is a
    // space, below every character a user name may hold (AccountStore.IsValidName), so one user's range never holds
    // another's keys; the submit sequence is zero-padded so that the keys sort as the numbers do.
    // The write whose rollback failed too (see LiteDbTransactions.RollBack): named as the cause of the later writes refused.
    private Exception? _failedWrite;
    private const string UserSeq = "$.UserId + ' ' + FORMAT($.Seq, 'D19')";
    private const string UserStatusSeq = "$.UserId + ' ' + $.Status + ' ' + FORMAT($.Seq, 'D19')";

    private readonly ILiteCollection<JobRecord> _jobs;
    private readonly AppDatabase _database;

    public LiteDbJobRecords(AppDatabase database)
    {
        _database = database;
        _jobs = database.Collection<JobRecord>("jobs");
        _jobs.EnsureIndex(nameof(UserSeq), UserSeq);
        _jobs.EnsureIndex(nameof(UserStatusSeq), UserStatusSeq);
        // Superseded by the compound keys; a file made before them still has it.
        _jobs.DropIndex(nameof(JobRecord.UserId));
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

    /// <summary>
    /// One LiteDB transaction (thread-bound: the writes of <paramref name="work"/> on this thread join it), one commit.
    /// Under the database's gate, which the stores' own check-and-write steps hold (a quota charge): the other order
    /// would deadlock, a store holding the gate and waiting for a collection this transaction holds until its commit.
    /// </summary>
    public void InOneWrite(Action work)
    {
        lock (_database.Gate)
        {
            var db = _database.Database;
            // As in LiteDbStorage.Write: the failed transaction still holds its collection locks, so no waiting for them.
            if (_failedWrite is { } earlier)
                throw new InvalidOperationException("app.db refuses batched writes since one failed and could not be rolled back; restart the server.", earlier);
            if (!db.BeginTrans()) throw new InvalidOperationException("A LiteDB transaction is already open on this thread.");
            try
            {
                work();
                db.Commit();
            }
            catch (Exception failed)
            {
                _failedWrite = LiteDbTransactions.RollBack(db, failed) ?? _failedWrite;
                throw;
            }
        }
    }

    public IReadOnlyList<JobRecord> WithStatus(JobStatus status) =>
        _jobs.Find(Query.EQ(nameof(JobRecord.Status), status.ToString())).OrderBy(j => j.Seq).ToList();

    public IReadOnlyList<JobRecord> Page(string? userId, JobStatus? status, long? beforeSeq, int limit) =>
        beforeSeq <= 1 || limit <= 0 ? [] : PageQuery(userId, status, beforeSeq, limit).ToList();

    /// <summary>The query behind <see cref="Page"/>, whose plan a test reads: an index range in index order, no sort.</summary>
    internal ILiteQueryableResult<JobRecord> PageQuery(string? userId, JobStatus? status, long? beforeSeq, int limit)
    {
        var query = _jobs.Query();
        if (userId is null)
        {
            // Everyone's jobs (the admin's list): the Seq index read backwards from the cursor.
            if (beforeSeq is { } before) query = query.Where(j => j.Seq < before);
            if (status is { } s) query = query.Where(Query.EQ(nameof(JobRecord.Status), s.ToString()));
            return query.OrderByDescending(j => j.Seq).Limit(limit);
        }
        var (key, prefix) = status is { } wanted ? (UserStatusSeq, $"{userId} {wanted} ") : (UserSeq, $"{userId} ");
        var last = beforeSeq is { } cursor ? Padded(cursor - 1) : new string('9', 19);
        return query.Where(Query.Between(key, prefix + Padded(0), prefix + last))
            // Exact even for an id holding the separator (not a valid user name, but the contract does not say so).
            .Where(j => j.UserId == userId)
            .OrderByDescending(BsonExpression.Create(key)).Limit(limit);
    }

    private static string Padded(long seq) => seq.ToString("D19", System.Globalization.CultureInfo.InvariantCulture);

    public IReadOnlyList<JobRecord> FinishedSince(DateTime from) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt >= from).ToList();

    public IReadOnlyList<JobRecord> FinishedBefore(DateTime cutoff) =>
        _jobs.Find(j => j.FinishedAt != null && j.FinishedAt < cutoff).Where(j => j.IsFinished).ToList();
}
