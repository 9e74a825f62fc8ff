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
    public async Task Keys_are_per_user()
    {
        var body = new { prompt = "mine", width = 256, height = 256, steps = 1 };

        var alice = await _app.ClientFor("alice").SubmitAsync(body, "shared");
        var bob = await _app.ClientFor("bob").SubmitAsync(body, "shared");

        Assert.NotEqual(alice.Str("id"), bob.Str("id"));
    }
}
