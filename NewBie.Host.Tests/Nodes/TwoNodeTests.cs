using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using NewBie.Host.Nodes;
using NewBie.Host.Tests.Storage;
using NewBie.LoadBench;

namespace NewBie.Host.Tests.Nodes;

/// <summary>
/// Two server processes on one PostgreSQL: any node takes a job and serves its status, events and images; both run
/// jobs; the queue stays fair across them; a cancel and a crash reach across nodes.
/// </summary>
[LongRunning]
public sealed class TwoNodeTests(TwoNodesFixture nodes) : IClassFixture<TwoNodesFixture>
{
    private NodeCluster Cluster => nodes.Cluster;

    [SkippableFact]
    public async Task Jobs_submitted_to_one_node_run_on_both_and_their_images_are_served_by_the_other()
    {
        TwoNodesFixture.SkipIfMissing();
        var key = await Cluster.CreateUserAsync(NewName("alice"));
        using var a = Cluster.Client(0, key);
        using var b = Cluster.Client(1, key);

        var ids = new List<string>();
        for (var i = 0; i < 4; i++) ids.Add((await a.SubmitAsync(new { prompt = $"1girl {i}", width = 320, height = 256, steps = 4, seed = 40 + i })).Str("id"));
        await WaitUntilAsync(async () => (await Busy()).Count == 2, "both nodes running a job at once");
        var done = new List<JsonElement>();
        foreach (var id in ids) done.Add(await b.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60)));

        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal(1, done[i].GetProperty("attempts").GetInt32());
            var png = await b.GetByteArrayAsync($"/v1/jobs/{ids[i]}/images/0");
            var (width, height, rgb) = PngDecoder.Decode(png);
            Assert.Equal((320, 256), (width, height));
            Assert.Equal((byte)(40 + i), rgb[2]);
        }
    }

    [SkippableFact]
    public async Task Events_on_one_node_follow_the_steps_of_a_job_running_on_the_other_within_a_second()
    {
        TwoNodesFixture.SkipIfMissing();
        var key = await Cluster.CreateUserAsync(NewName("carol"));
        using var a = Cluster.Client(0, key);
        var id = (await a.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 30 })).Str("id");
        var runner = await Cluster.RunningNodeOfAsync(id, TimeSpan.FromSeconds(30));
        using var there = Cluster.Client(runner, key);
        using var elsewhere = Cluster.Client(1 - runner, key);

        var local = ReadStepsAsync(there, id);
        var remote = ReadStepsAsync(elsewhere, id);
        var (localSteps, remoteSteps) = (await local, await remote);

        Assert.True(remoteSteps.Count >= 5, $"the other node's stream saw {remoteSteps.Count} steps");
        foreach (var (step, at) in remoteSteps)
            if (localSteps.TryGetValue(step, out var first))
                Assert.True(at - first < TimeSpan.FromSeconds(1), $"step {step} reached the other node {(at - first).TotalMilliseconds:0} ms later");
    }

    [SkippableFact]
    public async Task Cancel_on_one_node_stops_the_job_running_on_the_other()
    {
        TwoNodesFixture.SkipIfMissing();
        var key = await Cluster.CreateUserAsync(NewName("dave"));
        using var a = Cluster.Client(0, key);
        var id = (await a.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 30 })).Str("id");
        var runner = await Cluster.RunningNodeOfAsync(id, TimeSpan.FromSeconds(30));
        using var elsewhere = Cluster.Client(1 - runner, key);
        var clock = Stopwatch.StartNew();

        using (var cancel = await elsewhere.DeleteAsync($"/v1/jobs/{id}")) Assert.True(cancel.IsSuccessStatusCode);
        var job = await elsewhere.WaitForStatusAsync(id, "canceled", TimeSpan.FromSeconds(10));

        Assert.True(clock.Elapsed < TwoNodesFixture.ServiceTime, $"canceled after {clock.Elapsed}, not before the run would have ended");
        Assert.Equal(0, job.GetProperty("images").GetArrayLength());
        await WaitUntilAsync(async () => (await Busy()).All(n => n.Job != id), $"node {runner} letting go of {id}");
    }

    [SkippableFact]
    public async Task Flood_of_one_user_does_not_delay_another_users_jobs_on_either_node()
    {
        TwoNodesFixture.SkipIfMissing();
        var flooder = await Cluster.CreateUserAsync(NewName("erin"));
        var other = await Cluster.CreateUserAsync(NewName("frank"));
        using var a = Cluster.Client(0, flooder);
        using var b = Cluster.Client(1, other);
        var flood = new List<string>();
        for (var i = 0; i < 10; i++) flood.Add((await a.SubmitAsync(new { prompt = $"flood {i}", width = 256, height = 256, steps = 2 })).Str("id"));
        await WaitUntilAsync(async () => (await Busy()).Count == 2, "both nodes running the flood");

        var submitted = DateTime.UtcNow;
        var mine = new List<string>();
        for (var i = 0; i < 2; i++) mine.Add((await b.SubmitAsync(new { prompt = $"mine {i}", width = 256, height = 256, steps = 2 })).Str("id"));
        var myJobs = new List<JsonElement>();
        foreach (var id in mine) myJobs.Add(await b.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(60)));
        var lastOfMine = myJobs.Max(j => j.GetProperty("started_at").GetDateTime().ToUniversalTime());
        // A flood job that starts from now on starts after the other user's last one: the rest of the flood is canceled
        // (409 for those already finished) instead of run to its end, eight more service times on two nodes.
        foreach (var id in flood)
            using (await a.DeleteAsync($"/v1/jobs/{id}")) { }
        var floodJobs = new List<JsonElement>();
        foreach (var id in flood)
            floodJobs.Add(await a.WaitForJobAsync(id, j => j.Str("status") is "succeeded" or "canceled", "the flood job ended", TimeSpan.FromSeconds(60)));

        // Fair order: the other user is next whenever a node frees up, then alternates with the flood. Both of theirs
        // start while the flood starts at most two of its own (one per node), never after the rest of the flood.
        var floodStartedMeanwhile = floodJobs.Count(j => j.GetProperty("started_at") is { ValueKind: JsonValueKind.String } at
            && at.GetDateTime().ToUniversalTime() is var t && t > submitted && t < lastOfMine);
        Assert.True(floodStartedMeanwhile <= 2, $"{floodStartedMeanwhile} flood jobs started before the other user's second job");
    }

    [SkippableFact]
    public async Task Node_killed_mid_job_its_job_completes_on_the_other_node_once_with_one_set_of_outputs()
    {
        TwoNodesFixture.SkipIfMissing();
        var key = await Cluster.CreateUserAsync(NewName("grace"));
        using var a = Cluster.Client(0, key);
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add((await a.SubmitAsync(new { prompt = $"kill {i}", width = 256, height = 256, steps = 10, count = 2 })).Str("id"));
        var busy = await WaitForRunningAsync(ids);
        var victim = busy.Index;
        var survivor = 1 - victim;

        await Cluster.KillAsync(victim);
        try
        {
            using var s = Cluster.Client(survivor, key);
            var jobs = new Dictionary<string, JsonElement>();
            foreach (var id in ids) jobs[id] = await s.WaitForStatusAsync(id, "succeeded", TimeSpan.FromSeconds(90));

            Assert.Equal(2, jobs[busy.Job].GetProperty("attempts").GetInt32());
            foreach (var id in ids)
            {
                Assert.Equal(2, jobs[id].GetProperty("images").GetArrayLength());
                Assert.Equal(2, (await nodes.OutputObjectsOfAsync(id)).Count);
                Assert.True(Png.IsWhole(await s.GetByteArrayAsync($"/v1/jobs/{id}/images/1")));
            }
            var list = await Cluster.NodeListAsync(survivor);
            Assert.Equal(NodeStates.Lost, list.Single(n => n.Str("name") == NodeCluster.NameOf(victim)).Str("state"));
        }
        finally
        {
            await Cluster.RestartAsync(victim);
        }
    }

    /// <summary>The nodes that run a job now, by their own heartbeat.</summary>
    private async Task<List<(int Index, string? Job)>> Busy()
    {
        var list = await Cluster.NodeListAsync(Cluster.Nodes.FindIndex(n => !n.Process.HasExited));
        return [.. list.Where(n => n.Str("state") == NodeStates.Ready && n.GetProperty("running_job").ValueKind == JsonValueKind.String)
            .Select(n => (int.Parse(n.Str("name")["node-".Length..], System.Globalization.CultureInfo.InvariantCulture), (string?)n.Str("running_job")))];
    }

    /// <summary>Reads the job's event stream until done: when each step was first seen.</summary>
    private static async Task<Dictionary<int, DateTime>> ReadStepsAsync(HttpClient client, string id)
    {
        var seen = new Dictionary<int, DateTime>();
        using var response = await client.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        string? name = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line["event: ".Length..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name == "step")
                seen.TryAdd(JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("step").GetInt32(), DateTime.UtcNow);
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && name == "done")
                return seen;
        }
        return seen;
    }

    /// <summary>The first node seen running one of <paramref name="ids"/>, and which one.</summary>
    private async Task<(int Index, string Job)> WaitForRunningAsync(IReadOnlyCollection<string> ids)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            foreach (var (index, job) in await Busy())
                if (job is not null && ids.Contains(job)) return (index, job);
            if (DateTime.UtcNow > deadline) Assert.Fail("waited 60 s for a node to run one of the jobs");
            await Task.Delay(50);
        }
    }

    // The node list moves only with each node's heartbeat (every fifth of Jobs:NodeTimeout, on the real clock of
    // another process) and no event announces a beat: these two read it again every 50 ms, bounded by 60 s.
    private static async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"waited 60 s for {what}");
            await Task.Delay(50);
        }
    }

    private static string NewName(string name) => $"{name}{Guid.NewGuid():N}"[..16];
}
