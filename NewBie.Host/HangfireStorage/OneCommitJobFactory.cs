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
        if (context.InitialState is null || !context.Storage.HasFeature(JobStorageFeatures.Transaction.CreateJob)
            || filters.GetFilters(context.Job).Any(f => f.Instance is IClientFilter))
            return _twoSteps.Create(context);
        if (context.Job.Queue != null && !context.Storage.HasFeature(JobStorageFeatures.JobQueueProperty))
            throw new NotSupportedException("The storage does not support a queue on the job itself; use the QueueAttribute instead.");

        var parameters = context.Parameters.ToDictionary(p => p.Key, p => SerializationHelper.Serialize(p.Value, SerializationOption.User));
        var createdAt = DateTime.UtcNow;
        using var transaction = (JobStorageTransaction)context.Connection.CreateWriteTransaction();
        var id = transaction.CreateJob(context.Job, parameters, createdAt, ExpireIn);
        var job = new BackgroundJob(id, context.Job, createdAt, parameters);
        _stateMachine.ApplyState(new ApplyStateContext(context.Storage, context.Connection, transaction, job, context.InitialState, oldStateName: null));
        transaction.Commit();
        return job;
    }
}
