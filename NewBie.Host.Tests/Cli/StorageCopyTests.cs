using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Storage;
using NewBie.Host.Storage.Postgres;
using NewBie.Host.Studio;
using NewBie.Host.Tests.Storage;
using static NewBie.Host.Storage.Postgres.PostgresDatabase;

namespace NewBie.Host.Tests.Cli;

/// <summary>The <c>storage copy</c> verb: an embedded server's data folder into an empty PostgreSQL database.</summary>
public sealed class StorageCopyTests : IDisposable
{
    private static readonly DateTime At = new(2026, 1, 1, 11, 59, 0, DateTimeKind.Utc);
    private readonly string _dataDir = Directory.CreateTempSubdirectory("newbie-copy-").FullName;

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);

    [SkippableFact]
    public async Task Copy_carries_every_kind_into_postgres_refuses_a_second_time_and_the_new_server_takes_the_key_and_runs_the_queued_job()
    {
        using var db = PostgresCluster.CreateDatabase();
        var (key, queuedId) = FillDataFolder();
        var expected = Snapshot(LiteDbStores, clearHangfireIds: true);

        var first = Run("copy", "--to", db.ConnectionString, "--data-dir", _dataDir);
        var copied = Snapshot(PostgresStores(db), clearHangfireIds: false);
        var second = Run("copy", "--to", db.ConnectionString, "--data-dir", _dataDir);
        var afterSecond = Snapshot(PostgresStores(db), clearHangfireIds: false);

        Assert.True(first.Code == 0, first.Err);
        Assert.Contains("users            2", first.Out, StringComparison.Ordinal);
        Assert.Contains("jobs unfinished  1", first.Out, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(_dataDir, "outputs"), first.Out, StringComparison.Ordinal);
        Assert.Equal(expected, copied);
        Assert.Equal(1, second.Code);
        Assert.Contains("already holds users", second.Err, StringComparison.Ordinal);
        Assert.Equal(copied, afterSecond);

        using var app = new NewBieApplication(new() { ["Storage:Provider"] = "postgres", ["ConnectionStrings:Postgres"] = db.ConnectionString });
        var alice = app.ClientWithBearer(key);
        var job = await alice.WaitForStatusAsync(queuedId, "succeeded");
        Assert.Equal("alice", app.Service<IJobRecords>().Find(queuedId)!.UserId);
        Assert.Equal(1, job.GetProperty("images").GetArrayLength());
    }

    [Fact]
    public void A_running_server_holds_the_data_folder_and_the_copy_exits_3()
    {
        using var held = new DataDirectory(Options.Create(new StorageOptions { DataDir = _dataDir }));

        var (code, _, err) = Run("copy", "--to", "Host=/nowhere;Database=x", "--data-dir", _dataDir);

        Assert.Equal(3, code);
        Assert.Contains("Stop the server first", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("copy", "--data-dir")]
    [InlineData("copy", "--from", "x")]
    [InlineData("export")]
    public void A_bad_command_line_exits_2_with_the_usage(params string[] args)
    {
        var (code, _, err) = Run(args);

        Assert.Equal(2, code);
        Assert.Contains("storage copy --to", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_command_line_dispatches_storage_to_the_copy_verb()
    {
        Assert.Equal(2, await NewBie.Host.Cli.Verbs.RunAsync(["storage", "export"]));
    }

    /// <summary>Two users (one admin with a password), a live and a revoked key, usage, a webhook secret, studio settings, a finished and a queued job.</summary>
    private (string Key, string QueuedId) FillDataFolder()
    {
        using var directory = new DataDirectory(Options.Create(new StorageOptions { DataDir = _dataDir }));
        using var database = new AppDatabase(directory);
        var stores = LiteDbStores(database);
        var accounts = new AccountStore(stores.Users, stores.Usage, Options.Create(new AccountsOptions()), TimeProvider.System);
        accounts.AddUser("ops", Roles.Admin, "correct horse battery");
        accounts.AddUser("alice", Roles.User, null);
        accounts.UpdateUser("alice", u => u.ImagesPerDay = 40);
        var (key, _) = accounts.CreateKey("alice", "laptop");
        var (_, revoked) = accounts.CreateKey("alice", "old");
        accounts.RevokeKey("alice", revoked.Id);
        Assert.True(stores.Usage.TryCharge("alice", At.Date, 3, 40));
        stores.WebhookSecrets.Rotate("alice");
        stores.StudioSettings.Save(new StudioSettings { UserId = "alice", Prompt = "1girl, smile", Seed = 7, Steps = 12 });
        stores.Jobs.Insert(Job("done", 1, JobStatus.Succeeded, j =>
        {
            j.FinishedAt = At;
            j.Images = [new JobImage { Index = 0, Width = 256, Height = 256, Seed = 5, File = "a/done/0.png" }];
            j.Webhook = new JobWebhook { Url = "https://example.test/hook", State = WebhookState.Delivered, Attempts = 1, LastStatus = 200, DeliveryJobId = "8" };
        }));
        stores.Jobs.Insert(Job("waiting", 2, JobStatus.Queued, _ => { }));
        return (key, "waiting");
    }

    private static JobRecord Job(string id, long seq, JobStatus status, Action<JobRecord> more)
    {
        var job = new JobRecord
        {
            Id = id, UserId = "alice", Seq = seq, Status = status, HangfireJobId = $"{seq + 10}", CreatedAt = At,
            Params = new JobParams { Prompt = "1girl", Width = 256, Height = 256, Steps = 2, Guidance = 5, Seed = 5, Count = 1 },
        };
        more(job);
        return job;
    }

    /// <summary>Everything the stores hold, as JSON per kind, read through the interfaces.</summary>
    private List<string> Snapshot(Func<AppStores> open, bool clearHangfireIds) => Snapshot(open(), clearHangfireIds);

    private List<string> Snapshot(Func<AppDatabase, AppStores> open, bool clearHangfireIds)
    {
        using var directory = new DataDirectory(Options.Create(new StorageOptions { DataDir = _dataDir }));
        using var database = new AppDatabase(directory);
        return Snapshot(open(database), clearHangfireIds);
    }

    private static List<string> Snapshot(AppStores stores, bool clearHangfireIds)
    {
        var users = stores.Users.Users();
        var jobs = Enum.GetValues<JobStatus>().SelectMany(stores.Jobs.WithStatus).OrderBy(j => j.Seq).ToList();
        if (clearHangfireIds)
            foreach (var job in jobs)
            {
                job.HangfireJobId = null;
                if (job.Webhook is { } w) w.DeliveryJobId = null;
            }
        return
        [
            ToJson(users),
            ToJson(users.Select(u => stores.Users.Keys(u.Name))),
            ToJson(stores.Usage.Since(DateTime.MinValue)),
            ToJson(users.Select(u => stores.WebhookSecrets.Find(u.Name))),
            ToJson(users.Select(u => stores.StudioSettings.Find(u.Name))),
            ToJson(jobs),
        ];
    }

    private static AppStores LiteDbStores(AppDatabase d) =>
        new(new LiteDbUserStore(d), new LiteDbUsageStore(d), new LiteDbWebhookSecretStore(d), new LiteDbStudioSettingsStore(d), new LiteDbJobRecords(d));

    private static Func<AppStores> PostgresStores(PostgresTestDatabase db) => () =>
    {
        var d = new PostgresDatabase(db.NewDataSource());
        return new AppStores(new PostgresUserStore(d), new PostgresUsageStore(d), new PostgresWebhookSecretStore(d), new PostgresStudioSettingsStore(d), new PostgresJobRecords(d));
    };

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = StorageCli.Run(args, new ConfigurationBuilder().Build(), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
