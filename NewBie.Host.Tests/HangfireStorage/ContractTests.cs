using Hangfire.InMemory;
using NewBie.Host.HangfireStorage;

namespace NewBie.Host.Tests.HangfireStorage;

/// <summary>The oracle: Hangfire's own in-memory storage must pass the contract as written.</summary>
public sealed class InMemoryStorageContractTests()
    : JobStorageContract(() => new InMemoryStorage(new InMemoryStorageOptions { MaxExpirationTime = null }));

/// <summary>
/// LiteDbStorage under the same contract. The poll interval is a minute, so the wake-up tests pass only if enqueues
/// signal waiting fetchers.
/// </summary>
public sealed class LiteDbStorageContractTests : JobStorageContract
{
    private readonly TempFolder _folder;

    public LiteDbStorageContractTests() : this(new TempFolder()) { }

    private LiteDbStorageContractTests(TempFolder folder)
        : base(() => new LiteDbStorage(Path.Combine(folder.Path, "hangfire.db"), new LiteDbStorageOptions { QueuePollInterval = TimeSpan.FromMinutes(1) })) => _folder = folder;

    public override void Dispose()
    {
        base.Dispose();
        _folder.Dispose();
    }
}

/// <summary>A folder under the system temp folder, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("newbie-store-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
