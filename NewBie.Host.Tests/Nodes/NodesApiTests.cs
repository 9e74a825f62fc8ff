using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Nodes;

namespace NewBie.Host.Tests.Nodes;

/// <summary>The node list in the embedded mode: the one node, its state and its running job; admins only.</summary>
public sealed class NodesApiTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Server:NodeName"] = "studio-box", ["Jobs:NodeTimeout"] = "00:00:02" });

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Embedded_node_list_has_this_one_node_with_its_device_plan_and_running_job_and_the_queue_names_it()
    {
        var admin = _app.AdminClient();
        _app.Engine.Hold();
        var id = (await _app.ClientFor().SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 4 })).Str("id");

        var busy = await WaitForNodeAsync(admin, n => n.GetProperty("running_job").GetString() == id);
        var queue = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/queue");
        _app.Engine.Release();
        var idle = await WaitForNodeAsync(admin, n => n.GetProperty("running_job").ValueKind == JsonValueKind.Null);

        Assert.Equal("studio-box", busy.Str("name"));
        Assert.Equal(NodeStates.Ready, busy.Str("state"));
        Assert.Equal("cpu", busy.Str("device"));
        Assert.Equal("all-resident", busy.Str("memory_plan"));
        Assert.Equal(NodeStates.Ready, idle.Str("state"));
        var running = queue.GetProperty("jobs").EnumerateArray().Single(j => j.Str("id") == id);
        Assert.Equal("studio-box", running.Str("node"));
        var page = await admin.GetStringAsync("/admin/nodes");
        Assert.Contains("""<td class="name">studio-box</td>""", page);
        Assert.Contains("""<td class="state">ready</td>""", page);
    }

    [Fact]
    public async Task Node_list_is_for_admins_only()
    {
        using var asUser = await _app.ClientFor("alice").GetAsync("/v1/admin/nodes");
        using var anonymous = await _app.CreateClient().GetAsync("/v1/admin/nodes");

        Assert.Equal(HttpStatusCode.Forbidden, asUser.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }

    [Fact]
    public async Task Embedded_readiness_has_no_shared_store_check()
    {
        var ready = await _app.AdminClient().GetFromJsonAsync<JsonElement>("/readyz");

        Assert.False(ready.GetProperty("checks").TryGetProperty("shared_store", out _));
    }

    // The node list is what the last heartbeat saw (a beat every fifth of Jobs:NodeTimeout): read again after each beat,
    // 20 s at most.
    private async Task<JsonElement> WaitForNodeAsync(HttpClient admin, Func<JsonElement, bool> condition)
    {
        var heartbeat = _app.Service<NodeHeartbeat>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            // Taken before the read: a beat after it completes it.
            var beat = heartbeat.NextBeat;
            var list = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/nodes");
            var nodes = list.GetProperty("nodes").EnumerateArray().ToList();
            if (nodes is [var only] && only.Str("state") == NodeStates.Ready && condition(only)) return only;
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) Assert.Fail($"the node list is {list}");
            await Task.WhenAny(beat, Task.Delay(left));
        }
    }
}
