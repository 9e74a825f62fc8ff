using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.States;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>A new job and its first state in one LiteDB commit, and nothing stored when that commit cannot be made.</summary>
public sealed class OneCommitJobFactoryTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly LiteDbStorage _storage;

    public OneCommitJobFactoryTests() => _storage = new LiteDbStorage(Path.Combine(_folder.Path, "hangfire.db"));

    public void Dispose()
    {
        _storage.Dispose();
        _folder.Dispose();
    }

    [Fact]
    public void A_new_enqueued_job_is_stored_in_one_commit_with_its_state_parameters_and_queue_row()
    {
        var client = Client(new JobFilterCollection());
        var before = _storage.Commits;

        var id = client.Create(Job.FromExpression(() => SampleJobs.Noop()), new EnqueuedState("default"), new Dictionary<string, object> { ["P"] = "x" });

        Assert.Equal(1, _storage.Commits - before);
        using var connection = _storage.GetConnection();
        Assert.Equal(EnqueuedState.StateName, connection.GetJobData(id).State);
        Assert.Equal("\"x\"", connection.GetJobParameter(id, "P"));
        // Persisted by its state, as Hangfire's own factory leaves it: not expiring while it waits.
        Assert.Null(_storage.Jobs.FindById(long.Parse(id, System.Globalization.CultureInfo.InvariantCulture)).ExpireAt);
        using var fetched = connection.FetchNextJob(["default"], new CancellationTokenSource(TimeSpan.FromSeconds(5)).Token);
        Assert.Equal(id, fetched.JobId);
        fetched.RemoveFromQueue();
    }

    [Fact]
    public void Hangfires_own_factory_takes_two_commits_for_the_same_job()
    {
        // Why OneCommitJobFactory exists; when a Hangfire upgrade makes this one commit, the class can go.
        var client = new BackgroundJobClient(_storage, new BackgroundJobFactory(new JobFilterCollection()), new BackgroundJobStateChanger(new JobFilterCollection()));
        var before = _storage.Commits;

        client.Create(Job.FromExpression(() => SampleJobs.Noop()), new EnqueuedState("default"));

        Assert.Equal(2, _storage.Commits - before);
    }

    [Fact]
    public void A_job_whose_first_state_fails_to_apply_leaves_nothing_stored()
    {
        var client = Client(new JobFilterCollection { new ThrowingElection() });

        Assert.ThrowsAny<Exception>(() => client.Create(Job.FromExpression(() => SampleJobs.Noop()), new EnqueuedState("default")));

        // Hangfire's two steps would have left the job, stateless, from its first commit.
        Assert.Equal(0, _storage.Jobs.Count());
        Assert.Equal(0, _storage.Queue.Count());
    }

    [Fact]
    public void A_job_with_a_client_filter_is_created_by_hangfires_factory_and_the_filter_runs()
    {
        var client = Client(new JobFilterCollection { new StampingClientFilter() });

        var id = client.Create(Job.FromExpression(() => SampleJobs.Noop()), new EnqueuedState("default"));

        using var connection = _storage.GetConnection();
        Assert.Equal("\"stamped\"", connection.GetJobParameter(id, "Stamp"));
        Assert.Equal(EnqueuedState.StateName, connection.GetJobData(id).State);
    }

    private BackgroundJobClient Client(JobFilterCollection filters) =>
        new(_storage, new OneCommitJobFactory(filters), new BackgroundJobStateChanger(filters));

    private sealed class ThrowingElection : IElectStateFilter
    {
        public void OnStateElection(ElectStateContext context) => throw new InvalidOperationException("election refused");
    }

    private sealed class StampingClientFilter : IClientFilter
    {
        public void OnCreating(CreatingContext context) => context.SetJobParameter("Stamp", "stamped");

        public void OnCreated(CreatedContext context) { }
    }
}
