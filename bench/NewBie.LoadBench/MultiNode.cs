using System.Text;

namespace NewBie.LoadBench;

/// <summary>
/// Issue 18's multi-node figures: 1, 2 and 3 nodes on one PostgreSQL (and the shared outputs store), each node with the
/// stand-in engine (Engine:StandIn:ServiceTime), so that node count and the shared store's overhead, not this machine's
/// cores, decide throughput. Every time figure comes from the server's job records.
/// </summary>
internal static class MultiNode
{
    public static readonly TimeSpan ServiceTime = TimeSpan.FromSeconds(2);

    private const int Users = 6, Size = 256, Steps = 4;

    // NEWBIE_BENCH_NODES_JOBS: fewer jobs per run for quick iterations (the figures use the default 60).
    private static readonly int JobsPerRun = int.TryParse(Environment.GetEnvironmentVariable("NEWBIE_BENCH_NODES_JOBS"), out var jobs) && jobs > 0 ? jobs : 60;

    // NEWBIE_BENCH_NODES_SCALING_ONLY=1: only the 1/2/3-node runs, without the fairness, rates and kill parts.
    private static bool ScalingOnly => Environment.GetEnvironmentVariable("NEWBIE_BENCH_NODES_SCALING_ONLY") == "1";

    /// <summary>Shared settings of every node; <paramref name="outputs"/> names the shared outputs store.</summary>
    private static string[] Settings(string connectionString, IEnumerable<string> outputs) =>
    [
        .. FaultRuns.OpenLimits, "Storage:Provider=postgres", $"ConnectionStrings:Postgres={connectionString}",
        $"Engine:StandIn:ServiceTime={ServiceTime}", "Jobs:NodeTimeout=00:00:10", "Storage:MinFreeBytes=0", .. outputs,
    ];

    /// <summary>Every run's nodes share one PostgreSQL and a fresh bucket of one s3rver (the S3 server the tests use).</summary>
    public static async Task<string> NodesAsync(TextWriter log)
    {
        using var postgres = LocalPostgres.Start();
        using var s3 = await S3rverProcess.StartAsync();
        var table = new StringBuilder();
        table.AppendLine($"Each run: a fresh database and a fresh bucket of one s3rver (the S3 server of the tests, `Outputs:Provider=s3`), N nodes (`serve` child processes with `Engine:StandIn:ServiceTime={ServiceTime}`, `Jobs:NodeTimeout=00:00:10`), " +
            $"{Users} users submitting {JobsPerRun} {Size}×{Size} {Steps}-step jobs at once, round robin over users and nodes. " +
            "Jobs/min = jobs ÷ (last finished_at − first created_at); the ideal is N × 60 s ÷ service time. " +
            "Lost = accepted but not succeeded; duplicated = a job with other than one image in its record or in the bucket.");
        table.AppendLine();
        table.AppendLine("| nodes | jobs | wall | jobs/min | × one node | ideal jobs/min | lost | duplicated | mean wait | mean run (started → finished) |");
        table.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        double? one = null;
        foreach (var n in new[] { 1, 2, 3 })
        {
            var bucket = await s3.CreateBucketAsync();
            await using var cluster = await NodeCluster.StartAsync(n, Settings(postgres.CreateDatabase(), s3.ServeSettings(bucket)));
            var run = await RunAsync(cluster, JobsPerRun, s3, bucket, kill: null, log);
            one ??= run.PerMinute;
            table.AppendLine($"| {n} | {run.Jobs} | {run.Wall.TotalSeconds:F1} s | {run.PerMinute:F1} | {run.PerMinute / one.Value:F2}× | {n * 60 / ServiceTime.TotalSeconds:F0} | {run.Lost} | {run.Duplicated} | {run.MeanWait:F1} s | {run.MeanRun:F2} s |");
            log.WriteLine($"  {n} node(s): {run.PerMinute:F1} jobs/min ({run.PerMinute / one.Value:F2}×), mean run {run.MeanRun:F2} s, lost {run.Lost}, duplicated {run.Duplicated}");
        }

        if (ScalingOnly) return table.ToString();
        table.AppendLine();
        table.AppendLine(await FairnessAsync(postgres, s3, log));
        table.AppendLine();
        table.AppendLine(await RatesAsync(postgres, s3, log));
        table.AppendLine();
        table.AppendLine(await KillAsync(postgres, s3, log));
        return table.ToString();
    }

    /// <summary>The images (not thumbnails) of each job in <paramref name="bucket"/>, by job id.</summary>
    private static async Task<Dictionary<string, int>> StoredImagesAsync(S3rverProcess s3, string bucket) =>
        (await s3.ListAsync(bucket)).Keys.Where(k => !k.EndsWith(".thumb.png", StringComparison.Ordinal) && k.EndsWith(".png", StringComparison.Ordinal))
            .GroupBy(k => k.Split('/')[1]).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Submits <paramref name="jobs"/> jobs round robin over users and nodes and waits until all finished.</summary>
    private static async Task<RunResult> RunAsync(NodeCluster cluster, int jobs, S3rverProcess s3, string bucket, Func<int, Task>? kill, TextWriter log)
    {
        var keys = new List<string>();
        for (var u = 0; u < Users; u++) keys.Add(await cluster.CreateUserAsync($"user{u}"));
        // Job i: user i mod 6 on node i mod N; N divides 6, so each user's client talks to one node.
        var clients = keys.Select((k, u) => new BenchClient(() => cluster.Nodes[u % cluster.Nodes.Count].Url, k)).ToList();
        try
        {
            var answers = await Task.WhenAll(Enumerable.Range(0, jobs).Select(i =>
                clients[i % Users].SubmitAsync(BenchClient.Job("<character_1><n>bench</n></character_1>", i, Steps, Size))));
            var ids = answers.Where(a => a.Status == 202).Select(a => a.Id!).ToList();
            if (kill is not null) await kill(ids.Count);
            using var admin = new BenchClient(() => cluster.Nodes.First(n => !n.Process.HasExited).Url, cluster.AdminKey, TimeSpan.FromMinutes(2));
            var all = await admin.WaitFinishedAsync(ids, TimeSpan.FromMinutes(20));
            var finished = ids.Select(id => all.GetValueOrDefault(id)).OfType<JobView>().ToList();
            var lost = ids.Count - finished.Count(j => j.Status == "succeeded") + (jobs - ids.Count);
            var stored = await StoredImagesAsync(s3, bucket);
            var duplicated = finished.Count(j => j.Status == "succeeded" && (j.Images != 1 || stored.GetValueOrDefault(j.Id) != 1));
            var from = finished.Min(j => j.CreatedAt);
            var to = finished.Where(j => j.FinishedAt is not null).Max(j => j.FinishedAt!.Value);
            var waits = finished.Where(j => j.StartedAt is not null).Select(j => (j.StartedAt!.Value - j.CreatedAt).TotalSeconds).ToList();
            // Started → finished of each job: the service time plus what a node spends on a job's claim, records and image.
            var runs = finished.Where(j => j.StartedAt is not null && j.FinishedAt is not null).Select(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalSeconds).ToList();
            return new RunResult(ids.Count, to - from, ids.Count / (to - from).TotalMinutes, lost, duplicated, waits.DefaultIfEmpty().Average(),
                runs.DefaultIfEmpty().Average(), finished.Count(j => j.Attempts > 1), finished);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }

    /// <summary>3 nodes; user0 floods, three others submit a third as many each, all at once; GPU shares while all are backlogged.</summary>
    private static async Task<string> FairnessAsync(LocalPostgres postgres, S3rverProcess s3, TextWriter log)
    {
        const int flood = 30, few = 10, others = 3;
        await using var cluster = await NodeCluster.StartAsync(3, Settings(postgres.CreateDatabase(), s3.ServeSettings(await s3.CreateBucketAsync())));
        var keys = new List<string>();
        for (var u = 0; u <= others; u++) keys.Add(await cluster.CreateUserAsync($"fair{u}"));
        var owner = new Dictionary<string, int>();
        // One client per user and node; each user's jobs go to the three nodes in turn.
        var clients = keys.Select(k => Enumerable.Range(0, 3).Select(n => new BenchClient(() => cluster.Nodes[n].Url, k)).ToArray()).ToArray();
        var submitted = new List<Task<(int User, Submitted Answer)>>();
        for (var u = 0; u <= others; u++)
            for (var i = 0; i < (u == 0 ? flood : few); i++)
            {
                var (user, client) = (u, clients[u][i % 3]);
                var body = BenchClient.Job($"<character_1><n>user{u}</n></character_1>", 1000 * user + i, Steps, Size);
                submitted.Add(client.SubmitAsync(body).ContinueWith(t => (user, t.Result), TaskScheduler.Default));
            }
        foreach (var (user, answer) in await Task.WhenAll(submitted))
            if (answer.Id is { } id) owner[id] = user;
        foreach (var client in clients.SelectMany(c => c)) client.Dispose();
        using var admin = new BenchClient(() => cluster.Nodes[0].Url, cluster.AdminKey, TimeSpan.FromMinutes(2));
        var all = await admin.WaitFinishedAsync(owner.Keys, TimeSpan.FromMinutes(20));
        var jobs = owner.Keys.Select(id => all[id]).Where(j => j.StartedAt is not null && j.FinishedAt is not null).ToList();
        // Contended window: from the first start to the moment the first user ran out of work (its last job finished).
        var from = jobs.Min(j => j.StartedAt!.Value);
        var to = jobs.GroupBy(j => owner[j.Id]).Min(g => g.Max(j => j.FinishedAt!.Value));
        double Overlap(JobView j) => Math.Max(0, ((j.FinishedAt!.Value < to ? j.FinishedAt.Value : to) - (j.StartedAt!.Value > from ? j.StartedAt.Value : from)).TotalSeconds);
        var total = jobs.Sum(Overlap);
        var text = new StringBuilder();
        text.AppendLine($"Fairness across 3 nodes: user0 submits {flood} jobs and {others} other users {few} each, all at once, spread over the nodes. " +
            $"Window = first start to the first user's last finish ({(to - from).TotalSeconds:F1} s), while every user is backlogged; share = the user's GPU seconds inside it; equal = {100.0 / (others + 1):F1} %.");
        text.AppendLine();
        text.AppendLine("| user | jobs | GPU share in window | off equal |");
        text.AppendLine("|---|---|---|---|");
        for (var u = 0; u <= others; u++)
        {
            var share = jobs.Where(j => owner[j.Id] == u).Sum(Overlap) / total * 100;
            text.AppendLine($"| user{u}{(u == 0 ? " (floods)" : "")} | {owner.Values.Count(o => o == u)} | {share:F1} % | {share - 100.0 / (others + 1):+0.0;-0.0} pts |");
            log.WriteLine($"  fair{u}: {share:F1} %");
        }
        return text.ToString();
    }

    /// <summary>Status reads (wrk) and durable submits (hey) against one node on PostgreSQL and one embedded node on LiteDB.</summary>
    private static async Task<string> RatesAsync(LocalPostgres postgres, S3rverProcess s3, TextWriter log)
    {
        Tools.Require("wrk", "hey");
        var text = new StringBuilder();
        text.AppendLine("API rates of one node, GPU queue paused (nothing runs), same machine, one after the other: LiteDB = the embedded mode, " +
            "PostgreSQL = `Storage:Provider=postgres` (a local server, fsync on). wrk: 2 threads, 32 connections, 10 s on `GET /v1/jobs/{id}`; " +
            "hey: 16 clients, 2,000 `POST /v1/jobs` (each 202 = stored).");
        text.AppendLine();
        text.AppendLine("| store | status reads/s | read p99 | submits/s | submit p95 | submit errors |");
        text.AppendLine("|---|---|---|---|---|---|");
        foreach (var (name, settings) in new[]
        {
            ("LiteDB", (string[])[.. FaultRuns.OpenLimits, $"Engine:StandIn:ServiceTime={ServiceTime}", "Storage:MinFreeBytes=0"]),
            ("PostgreSQL", Settings(postgres.CreateDatabase(), s3.ServeSettings(await s3.CreateBucketAsync()))),
        })
        {
            await using var cluster = await NodeCluster.StartAsync(1, settings);
            using var admin = new BenchClient(() => cluster.Nodes[0].Url, cluster.AdminKey);
            if (await admin.PostAsync("/v1/admin/queue/pause") != 200) throw new InvalidOperationException("could not pause the queue");
            var id = (await admin.SubmitAsync(BenchClient.Job("<character_1><n>read</n></character_1>", 1, Steps, Size))).Id!;
            var reads = await Tools.WrkAsync($"{cluster.Nodes[0].Url}/v1/jobs/{id}", cluster.AdminKey, log);
            var body = System.Text.Json.JsonSerializer.Serialize(BenchClient.Job("<character_1><n>submit</n></character_1>", 2, Steps, Size));
            var submits = await Tools.HeyPostAsync($"{cluster.Nodes[0].Url}/v1/jobs", cluster.AdminKey, body, 2000, 16, log);
            text.AppendLine($"| {name} | {reads.PerSecond:F0} | {reads.P99Ms:F1} ms | {submits.PerSecond:F0} | {submits.P95Ms:F1} ms | {submits.Errors} |");
        }
        return text.ToString();
    }

    /// <summary>3 nodes under load; node-1 is killed (SIGKILL) once a sixth of the jobs finished.</summary>
    private static async Task<string> KillAsync(LocalPostgres postgres, S3rverProcess s3, TextWriter log)
    {
        var bucket = await s3.CreateBucketAsync();
        await using var cluster = await NodeCluster.StartAsync(3, Settings(postgres.CreateDatabase(), s3.ServeSettings(bucket)));
        async Task KillOne(int accepted)
        {
            using var admin = new BenchClient(() => cluster.Nodes[0].Url, cluster.AdminKey);
            while ((await admin.AllJobsAsync()).Count(j => j.IsFinished) < accepted / 6) await Task.Delay(200);
            await cluster.KillAsync(1);
            log.WriteLine("  killed node-1");
        }
        var run = await RunAsync(cluster, JobsPerRun, s3, bucket, KillOne, log);
        return $"`kill -9` of node-1 of 3 once a sixth of {JobsPerRun} jobs had finished: {run.Jobs} accepted, {run.Lost} lost, {run.Duplicated} duplicated, " +
            $"{run.Rerun} run again (attempts 2) on the surviving nodes; {run.PerMinute:F1} jobs/min overall.";
    }

    private sealed record RunResult(int Jobs, TimeSpan Wall, double PerMinute, int Lost, int Duplicated, double MeanWait, double MeanRun, int Rerun, List<JobView> Finished);
}
