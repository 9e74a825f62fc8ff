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

/// <summary>LiteDbStorage under the fair queue contract; the poll is a minute, so only signals wake fetchers in time.</summary>
public sealed class LiteDbFairQueueContractTests : FairQueueContract
{
    private readonly TempFolder _folder;
    private readonly List<LiteDbStorage> _opened;

    public LiteDbFairQueueContractTests() : this(new TempFolder(), []) { }

    private LiteDbFairQueueContractTests(TempFolder folder, List<LiteDbStorage> opened) : base(() =>
    {
        var storage = new LiteDbStorage(Path.Combine(folder.Path, "hangfire.db"), new LiteDbStorageOptions { QueuePollInterval = TimeSpan.FromMinutes(1) });
        opened.Add(storage);
        return new FairNode(storage, storage);
    })
    {
        _folder = folder;
        _opened = opened;
    }

    public override void Dispose()
    {
        foreach (var storage in _opened) storage.Dispose();
        _folder.Dispose();
        base.Dispose();
    }
}
