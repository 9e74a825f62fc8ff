using LiteDB;
using LiteDB.Engine;
using NewBie.Host.Storage;
using NewBie.Host.Tests.HangfireStorage;

namespace NewBie.Host.Tests.Storage;

public sealed class DrainingLiteEngineTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private LiteDatabase Open(string name) => DrainingLiteEngine.Open(new EngineSettings { Filename = Path.Combine(_folder.Path, name) }, new BsonMapper());

    private LiteDatabase Open(string name, out DrainingLiteEngine engine)
    {
        engine = new DrainingLiteEngine(new LiteEngine(new EngineSettings { Filename = Path.Combine(_folder.Path, name) }));
        return new LiteDatabase(engine);
    }

    [Fact]
    public void Closing_while_writers_are_inside_fails_later_calls_cleanly_and_leaves_no_transaction_for_the_finalizer()
    {
        // Plain LiteDB 5 ends the process here within a few rounds: a write racing the close leaves a transaction that
        // the GC finalizes, and its clean-up throws on the finalizer thread ("discarded page must be writable").
        var unexpected = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        for (var round = 0; round < 20; round++)
        {
            var db = Open($"round{round}.db");
            var health = db.GetCollection<BsonDocument>("health");
            using var writing = new CountdownEvent(4);
            var writers = Enumerable.Range(0, 4).Select(i => new Thread(() =>
            {
                var signalled = false;
                while (true)
                {
                    try
                    {
                        health.Upsert(new BsonDocument { ["_id"] = $"probe{i}", ["pad"] = new string('x', 3000) });
                    }
                    catch (ObjectDisposedException)
                    {
                        break;
                    }
                    catch (Exception e)
                    {
                        unexpected.Add(e);
                        break;
                    }
                    if (!signalled) writing.Signal();
                    signalled = true;
                }
                if (!signalled) writing.Signal();
            })).ToList();
            writers.ForEach(t => t.Start());

            writing.Wait();
            db.Dispose();
            writers.ForEach(t => t.Join());
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.Empty(unexpected);
    }

    [Fact]
    public async Task A_reader_open_when_closing_starts_reads_to_its_end_and_closing_waits_for_it()
    {
        var db = Open("reader.db", out var engine);
        var items = db.GetCollection<BsonDocument>("items");
        items.InsertBulk(Enumerable.Range(1, 50).Select(i => new BsonDocument { ["_id"] = i }));
        using var reader = items.Query().ToEnumerable().GetEnumerator();
        Assert.True(reader.MoveNext());
        Assert.Equal(1, engine.Inside);

        var closing = Task.Run(db.Dispose);
        // Closing has begun once a new call is refused.
        while (true)
        {
            try
            {
                items.FindById(1);
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            await Task.Yield();
        }

        Assert.False(closing.IsCompleted);
        var read = 1;
        while (reader.MoveNext()) read++;
        Assert.Equal(50, read);
        reader.Dispose();
        await closing;
        Assert.Equal(0, engine.Inside);
    }

    [Fact]
    public void An_explicit_transaction_counts_as_inside_until_it_commits()
    {
        using var db = Open("trans.db", out var engine);

        Assert.True(db.BeginTrans());
        db.GetCollection<BsonDocument>("items").Insert(new BsonDocument { ["_id"] = 1 });
        Assert.Equal(1, engine.Inside);
        Assert.False(db.BeginTrans());
        Assert.Equal(1, engine.Inside);
        Assert.True(db.Commit());
        Assert.Equal(0, engine.Inside);
        Assert.False(db.Rollback());
        Assert.Equal(0, engine.Inside);
    }
}
