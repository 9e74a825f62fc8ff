using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Host.Storage.Postgres;
using NewBie.Host.Tests.Storage;
using static NewBie.Host.Tests.Outputs.OutputStoreContract;

namespace NewBie.Host.Tests.Outputs;

/// <summary>
/// The storage cap's count with Storage:Provider=postgres: one row per user in newbie_output_usage that every node's
/// writes and deletes move, so a node sees the bytes another node wrote the moment they are written.
/// </summary>
public sealed class PostgresOutputUsageTests : IDisposable
{
    private readonly Lazy<PostgresTestDatabase> _db = new(PostgresCluster.CreateDatabase);
    private readonly string _outputs = Directory.CreateTempSubdirectory("newbie-usage-").FullName;

    public void Dispose()
    {
        if (_db.IsValueCreated) _db.Value.Dispose();
        Directory.Delete(_outputs, recursive: true);
    }

    /// <summary>One node's count: a data source of its own on the test's database.</summary>
    private PostgresOutputUsage Node(TimeProvider time) =>
        new(new PostgresDatabase(_db.Value.NewDataSource()), time, Options.Create(new OutputsOptions { UsageRefresh = UsageRefresh }));

    [SkippableFact]
    public Task Bytes_used_are_listed_once_then_follow_the_writes_and_deletes() =>
        Bytes_used_are_listed_once_then_follow_this_stores_writes_and_deletes(new FolderOutputBlobs(_outputs), Node);

    [SkippableFact]
    public async Task Two_nodes_writes_and_deletes_are_counted_together()
    {
        var time = new FakeTimeProvider();
        var blobs = new FolderOutputBlobs(_outputs); // one shared store, as a bucket is
        OutputStore a = Store(blobs, time, Node(time)), b = Store(blobs, time, Node(time));
        const string user = "alice";
        async Task<long> Listed() => (await blobs.ListAsync(OutputStore.UserFolder(user) + "/", default)).Values.Sum();
        Assert.Equal(0, await a.BytesUsedByAsync(user, default));
        Assert.Equal(0, await b.BytesUsedByAsync(user, default));

        var onA = await a.WriteAsync(Job("job1", user), Request, "m", [Image(0, 1, 300, 300), Image(1, 2)], default);
        var onB = await b.WriteAsync(Job("job2", user), Request, "m", [Image(0, 3)], default);
        await b.OpenThumbnailAsync(Job("job1", user), onA[0], default);
        var afterWrites = (A: await a.BytesUsedByAsync(user, default), B: await b.BytesUsedByAsync(user, default));
        var listedAfterWrites = await Listed();
        await b.DeleteAsync(Job("job1", user), onA[1], default);
        await a.DeleteAsync(Job("job2", user), default);
        var afterDeletes = (A: await a.BytesUsedByAsync(user, default), B: await b.BytesUsedByAsync(user, default));

        Assert.Single(onB);
        Assert.Equal((listedAfterWrites, listedAfterWrites), afterWrites);
        Assert.Equal(afterDeletes.A, afterDeletes.B);
        Assert.Equal(await Listed(), afterDeletes.A);
        Assert.True(afterDeletes.A < afterWrites.A);
    }

    [SkippableFact]
    public async Task A_measurement_that_raced_another_nodes_write_is_not_kept()
    {
        var time = new FakeTimeProvider();
        PostgresOutputUsage a = Node(time), b = Node(time);

        // While node A lists the store, node B writes 7 bytes: the listing may or may not hold them.
        var raced = await a.BytesAsync("alice", async () =>
        {
            await b.AddAsync("alice", 7);
            return 10;
        }, default);
        var measuredAgain = await a.BytesAsync("alice", () => Task.FromResult(17L), default);
        var kept = await b.BytesAsync("alice", () => throw new InvalidOperationException("a kept count is not listed again"), default);

        Assert.Equal(10, raced);
        Assert.Equal(17, measuredAgain);
        Assert.Equal(17, kept);
    }

    [SkippableFact]
    public async Task A_submit_past_the_cap_is_refused_on_the_node_that_did_not_write_the_images()
    {
        // One 256×256 image at its largest fits under the cap; a second one does not once the first one's PNG is kept.
        var cap = (256 * 256 * 3 + 64 * 1024 + 100).ToString(CultureInfo.InvariantCulture);
        Dictionary<string, string?> settings = new()
        {
            ["Storage:Provider"] = "postgres",
            ["ConnectionStrings:Postgres"] = _db.Value.ConnectionString,
            ["Accounts:Defaults:MaxStorageBytes"] = cap,
        };
        // Two nodes in one process on one database and one outputs store (a folder here, as a bucket would be).
        using var nodeA = new NewBieApplication(settings).WithServices(s => s.AddSingleton<IOutputBlobs>(new FolderOutputBlobs(_outputs)));
        using var nodeB = new NewBieApplication(settings).WithServices(s => s.AddSingleton<IOutputBlobs>(new FolderOutputBlobs(_outputs)));
        var onA = nodeA.ClientWithKey("alice");
        var onB = nodeB.ClientWithKey("alice");
        var small = new { prompt = "x", width = 256, height = 256, steps = 2 };
        // Node B counts alice's bytes before node A writes any: a count of its own would stay 0 for Outputs:UsageRefresh.
        var before = await onB.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/me/usage");

        var first = (await onA.SubmitAsync(small)).Str("id");
        await onA.WaitForStatusAsync(first, "succeeded");
        var usageA = await onA.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/me/usage");
        var usageB = await onB.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/me/usage");
        using var refused = await onB.PostRawAsync("/v1/jobs", small);

        Assert.Equal(0, before.GetProperty("storage_bytes").GetInt64());
        Assert.True(usageA.GetProperty("storage_bytes").GetInt64() > 0);
        Assert.Equal(usageA.GetProperty("storage_bytes").GetInt64(), usageB.GetProperty("storage_bytes").GetInt64());
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal("storage_cap_exceeded", (await refused.ProblemAsync()).Str("code"));

        // Deleting the images on node B gives the space back on node A.
        using var deleted = await onB.DeleteAsync($"/v1/me/history/{first}");
        using var again = await onA.PostRawAsync("/v1/jobs", small);
        Assert.Equal(HttpStatusCode.Accepted, again.StatusCode);
    }
}
