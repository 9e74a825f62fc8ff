using Hangfire.Storage;

namespace NewBie.Host.HangfireStorage;

/// <summary>
/// A claimed queue row. Acknowledge with <see cref="RemoveFromQueue"/> (or in a transaction); disposing it without
/// acknowledging puts the job back in its queue. The token makes a stale handle harmless after a requeue.
/// </summary>
internal sealed class LiteFetchedJob(LiteDbStorage storage, QueueDocument row) : IFetchedJob
{
    private bool _settled;

    public string JobId { get; } = LiteDbStorage.JobKey(row.JobId);

    internal long RowId { get; } = row.Id;

    private readonly string _queue = row.Queue;

    internal string Token { get; } = row.FetchToken!;

    internal LiteDbStorage Storage => storage;

    public void RemoveFromQueue()
    {
        storage.Write(() => DeleteRow(storage));
        _settled = true;
    }

    public void Requeue()
    {
        storage.Write(() => ReturnRow(storage));
        storage.Signal.Raise(_queue);
        _settled = true;
    }

    public void Dispose()
    {
        // After shutdown the next start hands the row out again (lock-file recovery), so there is nothing to do.
        if (_settled || storage.IsDisposed) return;
        Requeue();
    }

    /// <summary>Deletes the row if this handle still owns it. Runs inside a storage write.</summary>
    internal void DeleteRow(LiteDbStorage target)
    {
        var id = RowId;
        var token = Token;
        target.Queue.DeleteMany(q => q.Id == id && q.FetchToken == token);
    }

    internal void MarkSettled() => _settled = true;

    private void ReturnRow(LiteDbStorage target)
    {
        var current = target.Queue.FindById(RowId);
        if (current == null || current.FetchToken != Token) return;
        current.FetchedAt = null;
        current.FetchToken = null;
        target.Queue.Update(current);
        if (target.FairIndex(current.Queue) is { } index) target.AfterCommit(() => index.Add(current.Id, LiteDbStorage.ToEntry(current)));
    }
}
