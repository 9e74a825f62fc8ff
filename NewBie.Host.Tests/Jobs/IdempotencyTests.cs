using System.Net;

namespace NewBie.Host.Tests.Jobs;

public sealed class IdempotencyTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Same_key_and_body_returns_the_first_job()
    {
        var client = _app.ClientFor();
        var body = new { prompt = "once", width = 256, height = 256, steps = 1 };

        var first = await client.SubmitAsync(body, "key-1");
        var second = await client.SubmitAsync(body, "key-1");

        Assert.Equal(first.Str("id"), second.Str("id"));
        await client.WaitForStatusAsync(first.Str("id"), "succeeded");
        Assert.Equal(1, _app.Engine.Runs);
    }

    [Fact]
    public async Task Same_key_with_another_body_is_409_idempotency_conflict()
    {
        var client = _app.ClientFor();
        await client.SubmitAsync(new { prompt = "once", width = 256, height = 256, steps = 1 }, "key-2");

        using var response = await client.PostRawAsync("/v1/jobs", new { prompt = "twice", width = 256, height = 256, steps = 1 }, "key-2");

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Equal("idempotency_conflict", (await response.ProblemAsync()).Str("code"));
    }

    [Fact]
    public async Task Keys_that_differ_only_in_case_are_different_keys()
    {
        var client = _app.ClientFor();
        var body = new { prompt = "case", width = 256, height = 256, steps = 1 };

        var upper = await client.SubmitAsync(body, "K1");
        var lower = await client.SubmitAsync(body, "k1");

        Assert.NotEqual(upper.Str("id"), lower.Str("id"));
    }

    [Fact]
    public async Task Job_id_in_another_case_is_404()
    {
        var client = _app.ClientFor();
        var id = (await client.SubmitAsync(new { prompt = "case", width = 256, height = 256, steps = 1 })).Str("id");
        var other = id.ToUpperInvariant() == id ? id.ToLowerInvariant() : id.ToUpperInvariant();

        using var response = await client.GetAsync($"/v1/jobs/{other}");

        Assert.NotEqual(id, other);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public void App_database_made_with_the_case_insensitive_default_is_rebuilt_to_compare_exactly()
    {
        using var app = new NewBieApplication();
        Directory.CreateDirectory(app.DataDir);
        using (var old = new LiteDB.LiteDatabase(Path.Combine(app.DataDir, "app.db")))
            old.GetCollection("jobs").Insert(new LiteDB.BsonDocument { ["_id"] = "abc" });

        var database = app.Service<NewBie.Host.Storage.AppDatabase>().Database;

        Assert.Equal(System.Globalization.CompareOptions.Ordinal, database.Collation.SortOptions);
        Assert.Null(database.GetCollection("jobs").FindById("ABC"));
        Assert.NotNull(database.GetCollection("jobs").FindById("abc"));
    }

    [Fact]
    public async Task Keys_are_per_user()
    {
        var body = new { prompt = "mine", width = 256, height = 256, steps = 1 };

        var alice = await _app.ClientFor("alice").SubmitAsync(body, "shared");
        var bob = await _app.ClientFor("bob").SubmitAsync(body, "shared");

        Assert.NotEqual(alice.Str("id"), bob.Str("id"));
    }
}
