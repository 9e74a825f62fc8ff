using LiteDB;
using LiteDB.Engine;

namespace NewBie.Host.Storage;

/// <summary>
/// A LiteDB engine that closes only once no call is inside it, and refuses calls that begin after closing started.
/// </summary>
/// <remarks>
/// LiteDB 5 closes an engine under the feet of other threads: its transaction monitor clears the list of open
/// transactions without waiting for the threads inside them. A transaction created while the list is cleared is
/// referenced by nothing once its thread gives up; the GC later finalizes it, and its finalizer's clean-up throws on
/// the finalizer thread ("discarded page must be writable"), which ends the process (LiteDB issue 2828). A request
/// writing a health probe or a worker storing a step while the host shuts down is enough. Draining here keeps every
/// transaction's life inside the engine's.
/// </remarks>
public sealed class DrainingLiteEngine : ILiteEngine
{
    /// <summary>How long closing waits for calls still inside; a reader never disposed must not hang shutdown.</summary>
    public static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);

    private readonly ILiteEngine _inner;
    private readonly object _gate = new();
    private int _inside;
    private bool _closing;

    public DrainingLiteEngine(ILiteEngine inner) => _inner = inner;

    /// <summary>Opens the LiteDB file of <paramref name="settings"/>, drained on close, as a database.</summary>
    public static LiteDatabase Open(EngineSettings settings, BsonMapper mapper)
    {
        var engine = new LiteEngine(settings);
        try
        {
            return new LiteDatabase(new DrainingLiteEngine(engine), mapper);
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Calls inside the engine now, open readers and explicit transactions included (tests read it).</summary>
    public int Inside
    {
        get { lock (_gate) return _inside; }
    }

    private void Enter()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closing, this);
            _inside++;
        }
    }

    private void Exit()
    {
        lock (_gate)
        {
            if (--_inside == 0 && _closing) Monitor.PulseAll(_gate);
        }
    }

    private T Call<T>(Func<ILiteEngine, T> call)
    {
        Enter();
        try
        {
            return call(_inner);
        }
        finally
        {
            Exit();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_closing) return;
            _closing = true;
            var deadline = DateTime.UtcNow + DrainTimeout;
            while (_inside > 0 && deadline - DateTime.UtcNow is { Ticks: > 0 } left) Monitor.Wait(_gate, left);
        }
        _inner.Dispose();
    }

    // An explicit transaction spans calls: it counts as inside from BeginTrans to its Commit or Rollback.
    public bool BeginTrans()
    {
        Enter();
        var begun = false;
        try
        {
            begun = _inner.BeginTrans();
            return begun;
        }
        finally
        {
            if (!begun) Exit();
        }
    }

    public bool Commit() => EndTrans(e => e.Commit());

    public bool Rollback() => EndTrans(e => e.Rollback());

    private bool EndTrans(Func<ILiteEngine, bool> end)
    {
        // Commit and Rollback answer false when this thread had no transaction: then nothing was counted for it.
        var ended = Call(end);
        if (ended) Exit();
        return ended;
    }

    /// <summary>A query's reader holds its read transaction until disposed, so it counts as inside until then.</summary>
    public IBsonDataReader Query(string collection, Query query)
    {
        Enter();
        try
        {
            return new Reader(_inner.Query(collection, query), this);
        }
        catch
        {
            Exit();
            throw;
        }
    }

    public int Checkpoint() => Call(e => e.Checkpoint());
    public long Rebuild(RebuildOptions options) => Call(e => e.Rebuild(options));
    public int Insert(string collection, IEnumerable<BsonDocument> docs, BsonAutoId autoId) => Call(e => e.Insert(collection, docs, autoId));
    public int Update(string collection, IEnumerable<BsonDocument> docs) => Call(e => e.Update(collection, docs));
    public int UpdateMany(string collection, BsonExpression transform, BsonExpression predicate) => Call(e => e.UpdateMany(collection, transform, predicate));
    public int Upsert(string collection, IEnumerable<BsonDocument> docs, BsonAutoId autoId) => Call(e => e.Upsert(collection, docs, autoId));
    public int Delete(string collection, IEnumerable<BsonValue> ids) => Call(e => e.Delete(collection, ids));
    public int DeleteMany(string collection, BsonExpression predicate) => Call(e => e.DeleteMany(collection, predicate));
    public bool DropCollection(string name) => Call(e => e.DropCollection(name));
    public bool RenameCollection(string name, string newName) => Call(e => e.RenameCollection(name, newName));
    public bool EnsureIndex(string collection, string name, BsonExpression expression, bool unique) => Call(e => e.EnsureIndex(collection, name, expression, unique));
    public bool DropIndex(string collection, string name) => Call(e => e.DropIndex(collection, name));
    public BsonValue Pragma(string name) => Call(e => e.Pragma(name));
    public bool Pragma(string name, BsonValue value) => Call(e => e.Pragma(name, value));

    private sealed class Reader(IBsonDataReader inner, DrainingLiteEngine engine) : IBsonDataReader
    {
        private int _disposed;

        public BsonValue this[string field] => inner[field];
        public string Collection => inner.Collection;
        public BsonValue Current => inner.Current;
        public bool HasValues => inner.HasValues;
        public bool Read() => inner.Read();

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            try
            {
                inner.Dispose();
            }
            finally
            {
                engine.Exit();
            }
        }
    }
}
