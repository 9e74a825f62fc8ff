using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// Creates a background job and applies its initial state in one write transaction, where the storage can
/// (<see cref="JobStorageFeatures.Transaction.CreateJob"/>): one commit per new job instead of two. Hangfire 1.8's own
/// factory always takes two steps (<c>CoreBackgroundJobFactory.CreateBackgroundJobTwoSteps</c>: CreateExpiredJob,
/// then a transaction for the state) even when the storage advertises the feature; every submit pays for the
/// second commit under the job store's lock. A crash between the two left a stateless job; with one transaction
/// there is either the whole job or nothing. Jobs with client filters, storages without the feature and jobs
/// without an initial state go to Hangfire's factory, which runs the filters around its two steps.
/// </summary>
public sealed class OneCommitJobFactory(IJobFilterProvider filters) : IBackgroundJobFactory
{
    // What Hangfire's factory gives a new job; its state (Enqueued, Scheduled) then persists it.
    private static readonly TimeSpan ExpireIn = TimeSpan.FromDays(30);

    private readonly BackgroundJobFactory _twoSteps = new(filters);
    private readonly StateMachine _stateMachine = new(filters);

    public IStateMachine StateMachine => _stateMachine;

    public BackgroundJob? Create(CreateContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.InitialState is null || !CanCreateInOneCommit(context.Storage, context.Job)) return _twoSteps.Create(context);
        using var transaction = (JobStorageTransaction)context.Connection.CreateWriteTransaction();
        var job = Add(context.Storage, context.Connection, transaction, context.Job, context.Parameters, context.InitialState);
        transaction.Commit();
        return job;
    }

    /// <summary>
    /// Creates all <paramref name="jobs"/> with their initial states in one write transaction: the group commit of
    /// submits (<c>JobQueue</c>), one commit for a whole batch. Null, and nothing created, where one of them cannot be
    /// (a client filter, a storage without the feature): the caller then creates them one by one through the client.
    /// </summary>
    public IReadOnlyList<string>? TryCreateMany(JobStorage storage, IReadOnlyList<(Job Job, IDictionary<string, object> Parameters, IState State)> jobs)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(jobs);
        if (!jobs.All(j => CanCreateInOneCommit(storage, j.Job))) return null;
        using var connection = storage.GetConnection();
        using var transaction = (JobStorageTransaction)connection.CreateWriteTransaction();
        var ids = jobs.Select(j => Add(storage, connection, transaction, j.Job, j.Parameters, j.State).Id).ToList();
        transaction.Commit();
        return ids;
    }

    private bool CanCreateInOneCommit(JobStorage storage, Job job)
    {
        if (!storage.HasFeature(JobStorageFeatures.Transaction.CreateJob) || filters.GetFilters(job).Any(f => f.Instance is IClientFilter)) return false;
        if (job.Queue != null && !storage.HasFeature(JobStorageFeatures.JobQueueProperty))
            throw new NotSupportedException("The storage does not support a queue on the job itself; use the QueueAttribute instead.");
        return true;
    }

    private BackgroundJob Add(JobStorage storage, IStorageConnection connection, JobStorageTransaction transaction, Job call, IDictionary<string, object> parameters, IState state)
    {
        var serialized = parameters.ToDictionary(p => p.Key, p => SerializationHelper.Serialize(p.Value, SerializationOption.User));
        var createdAt = DateTime.UtcNow;
        var id = transaction.CreateJob(call, serialized, createdAt, ExpireIn);
        var job = new BackgroundJob(id, call, createdAt, serialized);
        _stateMachine.ApplyState(new ApplyStateContext(storage, connection, transaction, job, state, oldStateName: null));
        return job;
    }
}
