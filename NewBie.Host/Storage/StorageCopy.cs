using NewBie.Host.Accounts;
using NewBie.Host.Integrations;
using NewBie.Host.Jobs;
using NewBie.Host.Studio;

namespace NewBie.Host.Storage;

/// <summary>One set of the app's stores: all its data, whichever database holds it.</summary>
public sealed record AppStores(IUserStore Users, IUsageStore Usage, IWebhookSecretStore WebhookSecrets, IStudioSettingsStore StudioSettings, IJobRecords Jobs)
{
    /// <summary>The stores of the embedded mode, in a data folder's app.db: the classes the server registers for litedb.</summary>
    public static AppStores Of(AppDatabase database) => new(new LiteDbUserStore(database), new LiteDbUsageStore(database),
        new LiteDbWebhookSecretStore(database), new LiteDbStudioSettingsStore(database), new LiteDbJobRecords(database));

    /// <summary>The stores in PostgreSQL: the classes the server registers for postgres.</summary>
    public static AppStores Of(Postgres.PostgresDatabase database) => new(new Postgres.PostgresUserStore(database), new Postgres.PostgresUsageStore(database),
        new Postgres.PostgresWebhookSecretStore(database), new Postgres.PostgresStudioSettingsStore(database), new Postgres.PostgresJobRecords(database));
}

/// <summary>What a copy carried, per kind.</summary>
public sealed record CopySummary(int Users, int Keys, int UsageCounters, int WebhookSecrets, int StudioSettings, int FinishedJobs, int UnfinishedJobs);

/// <summary>
/// Copies all the app's data from one set of stores to another through the store interfaces only, so that it works
/// between any two implementations (the <c>storage copy</c> verb: LiteDB to PostgreSQL). Not one transaction: a copy
/// that fails half-way leaves the target partly filled, and the target must then be emptied (a new database).
/// </summary>
public static class StorageCopy
{
    /// <summary>Why <paramref name="to"/> cannot take a copy (it already holds users or jobs), or null when it can.</summary>
    public static string? WhyNotEmpty(AppStores to) =>
        to.Users.AnyUsers() ? "it already holds users"
        : to.Jobs.Page(null, null, null, 1).Count > 0 ? "it already holds jobs"
        : null;

    public static CopySummary Copy(AppStores from, AppStores to)
    {
        int keys = 0, secrets = 0, settings = 0, usage = 0, finished = 0, unfinished = 0;
        var users = from.Users.Users();
        foreach (var user in users)
        {
            // The whole record: password hash, role, limits and security stamp (sign-in cookies stay valid).
            if (!to.Users.TryAddUser(user)) throw new InvalidOperationException($"The target already has a user '{user.Name}'.");
            foreach (var key in from.Users.Keys(user.Name))
            {
                to.Users.AddKey(key);
                keys++;
            }
            if (from.WebhookSecrets.Find(user.Name) is { } secret)
            {
                to.WebhookSecrets.Save(user.Name, secret);
                secrets++;
            }
            if (from.StudioSettings.Find(user.Name) is { } studio)
            {
                to.StudioSettings.Save(studio);
                settings++;
            }
        }
        foreach (var counter in from.Usage.Since(DateTime.MinValue))
        {
            // No limit: the counter is carried as it is, even past a quota lowered since.
            if (!to.Usage.TryCharge(counter.UserName, counter.Day, counter.ImagesRequested, int.MaxValue))
                throw new InvalidOperationException($"The usage counter of {counter.UserName} on {counter.Day:yyyy-MM-dd} could not be copied.");
            usage++;
        }
        foreach (var job in Enum.GetValues<JobStatus>().SelectMany(from.Jobs.WithStatus).OrderBy(j => j.Seq))
        {
            // Hangfire job ids belong to the old Hangfire storage and mean nothing in the new one. Without one, the
            // first server to start re-queues an unfinished job (JobQueue.Reconcile) and a pending webhook delivery
            // (WebhookDispatcher), as after a crash.
            job.HangfireJobId = null;
            if (job.Webhook is { } webhook) webhook.DeliveryJobId = null;
            to.Jobs.Insert(job);
            if (job.IsFinished) finished++;
            else unfinished++;
        }
        return new CopySummary(users.Count, keys, usage, secrets, settings, finished, unfinished);
    }
}
