using Hangfire.Server;
using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// The storage-wide server process that deletes expired jobs, sets, lists, hashes and counters every
/// <see cref="LiteDbStorageOptions.JobExpirationCheckInterval"/>.
/// </summary>
internal sealed class ExpirationManager(LiteDbStorage storage) : IBackgroundProcess
{
    // Each Hangfire server in the process runs its own copy of this process; one sweep at a time is enough.
    private const string LockResource = "expiration-manager";

    public void Execute(BackgroundProcessContext context)
    {
        try
        {
            using (storage.Locks.Acquire(LockResource, this, storage.Options.DistributedLockTimeout))
            {
                storage.RemoveExpired(DateTime.UtcNow);
            }
        }
        catch (DistributedLockTimeoutException)
        {
            // Another manager is sweeping right now.
        }
        context.Wait(storage.Options.JobExpirationCheckInterval);
    }

    public override string ToString() => "LiteDB expiration manager";
}
