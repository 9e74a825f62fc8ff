using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace NewBie.LoadBench;

/// <summary>A fresh server on its own temp data folder with an admin and some users (keys made with the users/keys verbs).</summary>
internal sealed class Deployment : IAsyncDisposable
{
    private Deployment(string dataDir, ServerProcess server, BenchClient admin, List<BenchClient> users)
    {
        DataDir = dataDir;
        Server = server;
        Admin = admin;
        Users = users;
    }

    public string DataDir { get; }

    public ServerProcess Server { get; }

    public BenchClient Admin { get; }

    public List<BenchClient> Users { get; }

    public static async Task<Deployment> StartAsync(int users, IEnumerable<string> settings)
    {
        var dir = Directory.CreateTempSubdirectory("newbie-load-").FullName;
        var adminKey = await ServerProcess.CreateUserAsync(dir, "admin", admin: true);
        var keys = new List<string>();
        for (var u = 0; u < users; u++) keys.Add(await ServerProcess.CreateUserAsync(dir, $"user{u}"));
        var server = await ServerProcess.StartAsync(dir, settings);
        await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
        // One job first, not counted: a deployed server is warm (JIT, the first forward's allocations), a fresh one is not.
        using (var warm = new BenchClient(() => server.Url, adminKey))
        {
            var id = (await warm.SubmitAsync(BenchClient.Job("<character_1><n>warm-up</n></character_1>", 0, Scenarios.Steps, Scenarios.Size))).Id!;
            await warm.WaitFinishedAsync([id], TimeSpan.FromMinutes(3));
        }
        return new Deployment(dir, server, new BenchClient(() => server.Url, adminKey, TimeSpan.FromMinutes(2)),
            keys.Select(k => new BenchClient(() => server.Url, k, TimeSpan.FromMinutes(2))).ToList());
    }

    public async ValueTask DisposeAsync()
    {
        Admin.Dispose();
        foreach (var u in Users) u.Dispose();
        await Server.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The load scenarios of issue 11. Every time figure comes from the server's job records (created/started/finished).</summary>
internal static class Scenarios
{
    public const int Size = 256, Steps = 4;

    /// <summary>The caps a small deployment would set: room for a 500-job backlog, 60 per user, submits paced per key and globally.</summary>
    public static readonly string[] DeploymentLimits =
    [
        "Jobs:MaxQueuedJobs=500", "Accounts:Defaults:MaxQueuedJobs=60", "Accounts:Defaults:ImagesPerDay=100000",
        "Accounts:RateLimits:KeyBurst=100", "Accounts:RateLimits:GlobalPerSecond=200", "Accounts:RateLimits:GlobalPerHour=100000",
        "Serilog:MinimumLevel:Default=Warning", "Serilog:MinimumLevel:Override:Microsoft.Hosting.Lifetime=Information", "Logs:JsonFile=false",
    ];

    public const int SeedUsers = 10;

    // ---------------------------------------------------------------- the seed's table

    public static async Task<string> SeedTableAsync(TextWriter log)
    {
        var table = new StringBuilder();
        table.AppendLine($"Each row: a fresh server warmed up by one job (not counted), then N submitters started at once, spread over {SeedUsers} users (round robin), each submitting one {Size}×{Size}, {Steps}-step tiny-model job; " +
            $"limits `{string.Join("`, `", DeploymentLimits.Take(6))}`. Latency = finished_at − created_at of the job record (queueing included), " +
            "service time = mean finished_at − started_at, ideal = a burst served back to back (k-th job waits k × service time: mean S·(m+1)/2, p95 S·⌈0.95 m⌉ for m accepted). " +
            "From send = the submit's own response time (the 202) added: what the client saw. Lost = accepted (202) but not finished, or its record or image gone, when all others had finished. " +
            $"Submit p95 = the submits' own response times, 202s and refusals together. A warm row: the same burst came once before from {SeedUsers} other users (their accepted jobs cancelled, " +
            "then 1.5 s for the per-second admission window), as on a server that has run a while; a cold row is a fresh server's first burst, whose first second runs largely on the .NET runtime's unoptimized tier-0 code.");
        table.AppendLine();
        table.AppendLine("| concurrent | accepted | refused 429 / 503 | lost | failed | mean latency | p95 latency | ideal mean / p95 | from send: mean / p95 | max queue wait | worker busy | service time | submit p95 | wall |");
        table.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        // NEWBIE_BENCH_SEED_ROWS=1000,1000w (a comma list) runs only those rows: the 1,000-submitter rows alone take minutes.
        // A "w" row is warm: the server met the same burst once before (see BurstRowAsync).
        string[] all = ["10", "50", "100", "1000", "1000w"];
        var rows = Environment.GetEnvironmentVariable("NEWBIE_BENCH_SEED_ROWS") is { Length: > 0 } wanted
            ? wanted.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : all;
        if (rows.Length < all.Length) table.Insert(0, $"Rows run this time (`NEWBIE_BENCH_SEED_ROWS={string.Join(',', rows)}`). ");
        foreach (var row in rows)
        {
            var warm = row.EndsWith('w');
            var n = int.Parse(row.TrimEnd('w'), System.Globalization.CultureInfo.InvariantCulture);
            log.WriteLine($"  burst of {n}{(warm ? ", warm" : "")}");
            table.AppendLine(await BurstRowAsync(n, log, warm));
        }
        table.AppendLine("| 10 / 50 / 100 / 1000 on a GPU with the real model | not measured (no GPU lent to this task) | | | | | | | | | | | | |");
        return table.ToString();
    }

    private static async Task<string> BurstRowAsync(int n, TextWriter log, bool warm = false)
    {
        // A warm row's earlier burst comes from users of its own: each key's submit budget (KeyBurst) stays whole.
        await using var d = await Deployment.StartAsync(warm ? 2 * SeedUsers : SeedUsers, DeploymentLimits);
        var users = d.Users[..SeedUsers];
        if (warm)
        {
            // The same burst once before, unmeasured, its accepted jobs cancelled: a server that has run a while has met
            // such bursts, and the .NET runtime has optimized the code they take (a fresh server runs a burst's first
            // second on unoptimized tier-0 code: tiered compilation waits for JIT activity to calm down first).
            var others = d.Users[SeedUsers..];
            var earlier = await BurstAsync(others, n, "warm-up", log);
            var accepted = earlier.Select((a, i) => (a, i)).Where(x => x.a.Status == 202).ToList();
            foreach (var (a, i) in accepted) await others[i % others.Count].CancelAsync(a.Id!);
            await d.Admin.WaitFinishedAsync([.. accepted.Select(x => x.a.Id!)], TimeSpan.FromMinutes(2));
            // The global admission window (Accounts:RateLimits:GlobalPerSecond) starts afresh, as for the cold row.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
        }
        var clock = Stopwatch.StartNew();
        // Seconds on CLOCK_MONOTONIC (Stopwatch's clock on Linux), as `perf record -k CLOCK_MONOTONIC` stamps its samples:
        // a profile of the whole run can be cut to the burst (perf report --time START,END --pid PID; BENCHMARKS.md, issue 15).
        log.WriteLine($"    burst on server pid {d.Server.Process.Id}: monotonic {(double)Stopwatch.GetTimestamp() / Stopwatch.Frequency:F6} s");
        var answers = await BurstAsync(users, n, "burst", log);
        log.WriteLine($"    burst answered: monotonic {(double)Stopwatch.GetTimestamp() / Stopwatch.Frequency:F6} s");
        var ids = answers.Where(a => a.Status == 202).Select(a => a.Id!).ToList();
        var jobs = await d.Admin.WaitFinishedAsync(ids, TimeSpan.FromMinutes(40));
        var wall = clock.Elapsed;
        var lost = await LostAsync(d, ids, jobs);
        var done = ids.Where(jobs.ContainsKey).Select(id => jobs[id]).Where(j => j.IsFinished).ToList();
        var ok = done.Where(j => j.Status == "succeeded").ToList();
        var service = Mean(ok.Select(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalSeconds));
        var latency = done.Select(j => (j.FinishedAt!.Value - j.CreatedAt).TotalSeconds).Order().ToList();
        var took = answers.Where(a => a.Id is not null).ToDictionary(a => a.Id!, a => a.Took.TotalSeconds);
        var fromSend = done.Select(j => took[j.Id] + (j.FinishedAt!.Value - j.CreatedAt).TotalSeconds).Order().ToList();
        var m = ids.Count;
        var busy = ok.Count == 0 ? 0 : ok.Sum(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalSeconds) /
            (done.Max(j => j.FinishedAt!.Value) - done.Min(j => j.CreatedAt)).TotalSeconds;
        var maxWait = done.Where(j => j.StartedAt is not null).Select(j => (j.StartedAt!.Value - j.CreatedAt).TotalSeconds).DefaultIfEmpty().Max();
        var r429 = answers.Count(a => a.Status == 429);
        var r503 = answers.Count(a => a.Status == 503);
        var other = answers.Count(a => a.Status is not (202 or 429 or 503));
        log.WriteLine($"    accepted {m}, 429 {r429}, 503 {r503}, other {other}, lost {lost}, service {service:F3} s, wall {wall.TotalSeconds:F0} s");
        return $"| {n}{(warm ? " warm" : "")} | {Pct(m, n)} | {Pct(r429, n)} / {Pct(r503, n)}{(other > 0 ? $" (+{other} other)" : "")} | {lost} | {done.Count - ok.Count} | " +
            $"{Mean(latency):F1} s | {Percentile(latency, 0.95):F1} s | {service * (m + 1) / 2:F1} / {service * Math.Ceiling(0.95 * m):F1} s | {Mean(fromSend):F1} / {Percentile(fromSend, 0.95):F1} s | " +
            $"{maxWait:F1} s | {busy * 100:F0} % | {service * 1000:F0} ms | {Percentile(answers.Select(a => a.Took.TotalMilliseconds).Order().ToList(), 0.95):F0} ms | {wall.TotalSeconds:F0} s |";
    }

    /// <summary>N submits started at once, spread over the deployment's users (round robin); their answers in order.</summary>
    private static async Task<Submitted[]> BurstAsync(List<BenchClient> users, int n, string name, TextWriter log)
    {
        var go = new TaskCompletionSource();
        var submits = Enumerable.Range(0, n).Select(async i =>
        {
            await go.Task;
            try
            {
                return await users[i % users.Count].SubmitAsync(BenchClient.Job($"<character_1><n>{name} {i}</n></character_1>", i, Steps, Size));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                log.WriteLine($"    submit {i}: {e.Message}");
                return new Submitted(0, null, "client_error", TimeSpan.Zero);
            }
        }).ToList();
        go.SetResult();
        return await Task.WhenAll(submits);
    }

    /// <summary>Accepted jobs that did not finish, or whose record (GET by id) or first image is gone.</summary>
    private static async Task<int> LostAsync(Deployment d, IReadOnlyList<string> ids, Dictionary<string, JobView> jobs)
    {
        var lost = 0;
        foreach (var id in ids)
        {
            if (!jobs.TryGetValue(id, out var listed) || !listed.IsFinished) { lost++; continue; }
            var job = await d.Admin.GetJobAsync(id);
            if (job is null || !job.IsFinished) { lost++; continue; }
            if (job.Status == "succeeded" && await d.Admin.ImageAsync(id, 0) is not { } png) lost++;
        }
        return lost;
    }

    // ---------------------------------------------------------------- API throughput

    public static async Task<string> ThroughputAsync(TextWriter log)
    {
        const int users = 4, writers = 16, readers = 32;
        var duration = TimeSpan.FromSeconds(15);
        await using var d = await Deployment.StartAsync(users, FaultRuns.OpenLimits);
        var finished = new List<string>();
        for (var i = 0; i < 20; i++) finished.Add((await d.Users[i % users].SubmitAsync(BenchClient.Job("<character_1><n>done</n></character_1>", i, Steps, Size))).Id!);
        await d.Admin.WaitFinishedAsync(finished, TimeSpan.FromMinutes(5));
        // The GPU worker is paused, so that the figures are the API's own and the tiny model does not take the CPU.
        await d.Admin.PostAsync("/v1/admin/queue/pause");
        var ids = new ConcurrentBag<string>();
        var submit = await Hammer(writers, duration, async w =>
        {
            var answer = await d.Users[w % users].SubmitAsync(BenchClient.Job("<character_1><n>tp</n></character_1>", w, Steps, Size));
            if (answer.Status != 202) throw new InvalidOperationException($"submit answered {answer.Status} {answer.Code}");
            ids.Add(answer.Id!);
        });
        log.WriteLine($"  submits: {submit}");
        var all = ids.ToArray();
        var read = await Hammer(readers, duration, async w =>
        {
            var id = all[Random.Shared.Next(all.Length)];
            _ = await d.Admin.GetJobAsync(id) ?? throw new InvalidOperationException($"job {id} is gone");
        });
        log.WriteLine($"  reads: {read}");
        var readFinished = await Hammer(readers, duration, async w =>
        {
            var id = finished[Random.Shared.Next(finished.Count)];
            _ = await d.Admin.GetJobAsync(id) ?? throw new InvalidOperationException($"job {id} is gone");
        });
        log.WriteLine($"  reads of finished jobs: {readFinished}");
        var table = new StringBuilder();
        table.AppendLine($"A fresh server, GPU queue paused (the figures are the API's, not the worker's), client and server on the same machine; {duration.TotalSeconds:F0} s per row, " +
            "own HttpClient load generator (keep-alive). Durable submit = validated, stored in LiteDB and enqueued in Hangfire before the 202.");
        table.AppendLine();
        table.AppendLine("| operation | concurrency | requests | errors | throughput | p50 | p99 |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        table.AppendLine($"| POST /v1/jobs (durable submit, {users} users) | {writers} | {submit.Count} | {submit.Errors} | {submit.PerSecond:F0} /s | {submit.P50:F1} ms | {submit.P99:F1} ms |");
        table.AppendLine($"| GET /v1/jobs/{{id}} of a queued job ({all.Length} queued) | {readers} | {read.Count} | {read.Errors} | {read.PerSecond:F0} /s | {read.P50:F1} ms | {read.P99:F1} ms |");
        table.AppendLine($"| GET /v1/jobs/{{id}} of a finished job (same {all.Length} queued) | {readers} | {readFinished.Count} | {readFinished.Errors} | {readFinished.PerSecond:F0} /s | {readFinished.P50:F1} ms | {readFinished.P99:F1} ms |");
        table.AppendLine();
        table.AppendLine("A queued job's read (and every submit's 202, which carries queue_position and eta_seconds) computes the whole queue's order and ETAs from the stored " +
            "records, so its cost grows with the backlog; a finished job's read does not. Submits also wait on LiteDB's and Hangfire's durable writes.");
        return table.ToString();
    }

    private sealed record HammerResult(int Count, int Errors, double PerSecond, double P50, double P99)
    {
        public override string ToString() => $"{Count} requests, {Errors} errors, {PerSecond:F0}/s, p50 {P50:F1} ms, p99 {P99:F1} ms";
    }

    private static async Task<HammerResult> Hammer(int workers, TimeSpan duration, Func<int, Task> call)
    {
        var times = new ConcurrentBag<double>();
        var errors = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            while (clock.Elapsed < duration)
            {
                var start = clock.Elapsed;
                try
                {
                    await call(w);
                    times.Add((clock.Elapsed - start).TotalMilliseconds);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or InvalidOperationException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        })));
        var sorted = times.Order().ToList();
        return new HammerResult(sorted.Count, errors, sorted.Count / clock.Elapsed.TotalSeconds, Percentile(sorted, 0.5), Percentile(sorted, 0.99));
    }

    // ---------------------------------------------------------------- scheduler overhead

    public static async Task<string> SchedulerGapAsync(TextWriter log)
    {
        const int jobs = 60;
        await using var d = await Deployment.StartAsync(1, FaultRuns.OpenLimits);
        await d.Admin.PostAsync("/v1/admin/queue/pause");
        var ids = new List<string>();
        for (var i = 0; i < jobs; i++) ids.Add((await d.Users[0].SubmitAsync(BenchClient.Job("<character_1><n>gap</n></character_1>", i, Steps, Size))).Id!);
        await d.Admin.PostAsync("/v1/admin/queue/resume");
        var all = await d.Admin.WaitFinishedAsync(ids, TimeSpan.FromMinutes(30));
        var runs = ids.Select(id => all[id]).Where(j => j.StartedAt is not null).OrderBy(j => j.StartedAt).ToList();
        // Under backlog: the next job was already queued when the previous one finished.
        var gaps = runs.Zip(runs.Skip(1)).Where(p => p.Second.CreatedAt <= p.First.FinishedAt)
            .Select(p => (p.Second.StartedAt!.Value - p.First.FinishedAt!.Value).TotalMilliseconds).Order().ToList();
        var service = Mean(runs.Select(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalMilliseconds));
        log.WriteLine($"  {gaps.Count} gaps, mean {Mean(gaps):F1} ms, max {gaps.DefaultIfEmpty().Max():F0} ms");
        var table = new StringBuilder();
        table.AppendLine($"A fresh server, {jobs} jobs ({Size}×{Size}, {Steps} steps) queued while the GPU queue was paused, then resumed. Gap = started_at of a job − finished_at of the one before " +
            "(the worker's idle time between consecutive jobs under backlog: Hangfire fetch, state changes, record updates); timestamps are the job records' (LiteDB, millisecond resolution).");
        table.AppendLine();
        table.AppendLine("| consecutive pairs | mean gap | p50 | p95 | max | service time (mean) | gap / service |");
        table.AppendLine("|---|---|---|---|---|---|---|");
        table.AppendLine($"| {gaps.Count} | {Mean(gaps):F1} ms | {Percentile(gaps, 0.5):F0} ms | {Percentile(gaps, 0.95):F0} ms | {gaps.DefaultIfEmpty().Max():F0} ms | {service:F0} ms | {Mean(gaps) / service * 100:F1} % |");
        return table.ToString();
    }

    // ---------------------------------------------------------------- fairness

    public static async Task<string> FairnessAsync(TextWriter log)
    {
        const int flood = 100, few = 5, light = 3;
        await using var d = await Deployment.StartAsync(1 + light, FaultRuns.OpenLimits);
        var heavy = await Task.WhenAll(Enumerable.Range(0, flood).Select(i => d.Users[0].SubmitAsync(BenchClient.Job("<character_1><n>flood</n></character_1>", i, Steps, Size))));
        var heavyIds = heavy.Where(a => a.Status == 202).Select(a => a.Id!).ToList();
        // The light users arrive once the flood is queued and running.
        while ((await d.Admin.GetJobAsync(heavyIds[0]))!.StartedAt is null) await Task.Delay(50);
        await Task.Delay(1000);
        var lightIds = new Dictionary<int, List<string>>();
        var lightAnswers = await Task.WhenAll(Enumerable.Range(1, light).SelectMany(u => Enumerable.Range(0, few).Select(async i =>
            (u, await d.Users[u].SubmitAsync(BenchClient.Job("<character_1><n>light</n></character_1>", 1000 * u + i, Steps, Size))))));
        foreach (var (u, a) in lightAnswers) (lightIds.TryGetValue(u, out var l) ? l : lightIds[u] = []).Add(a.Id!);
        var all = await d.Admin.WaitFinishedAsync([.. heavyIds, .. lightIds.Values.SelectMany(v => v)], TimeSpan.FromMinutes(30));
        var lightJobs = lightIds.Values.SelectMany(v => v).Select(id => all[id]).ToList();
        var from = lightJobs.Min(j => j.CreatedAt);
        var to = lightJobs.Max(j => j.FinishedAt!.Value);
        double Overlap(JobView j) => j.StartedAt is null ? 0 : Math.Max(0, (Min(j.FinishedAt!.Value, to) - Max(j.StartedAt.Value, from)).TotalSeconds);
        var byUser = new List<(string Name, List<JobView> Jobs)> { ("user0 (floods 100)", heavyIds.Select(id => all[id]).ToList()) };
        byUser.AddRange(lightIds.OrderBy(l => l.Key).Select(l => ($"user{l.Key} ({few} jobs)", l.Value.Select(id => all[id]).ToList())));
        var total = byUser.Sum(u => u.Jobs.Sum(Overlap));
        var service = Mean(byUser.SelectMany(u => u.Jobs).Where(j => j.Status == "succeeded").Select(j => (j.FinishedAt!.Value - j.StartedAt!.Value).TotalSeconds));
        var table = new StringBuilder();
        table.AppendLine($"A fresh server; user0 submits {flood} jobs at once, and once they run, {light} other users submit {few} each ({Size}×{Size}, {Steps} steps, default priority). " +
            $"Contended window = first light submit to last light job finished ({(to - from).TotalSeconds:F1} s); share = the user's GPU seconds (started..finished of its runs) inside it. " +
            $"Service time {service * 1000:F0} ms; an equal share among the 4 backlogged users is 25 %.");
        table.AppendLine();
        table.AppendLine("| user | jobs | GPU share in window | mean wait (started − created) | max wait |");
        table.AppendLine("|---|---|---|---|---|");
        foreach (var (name, jobs) in byUser)
        {
            var waits = jobs.Where(j => j.StartedAt is not null).Select(j => (j.StartedAt!.Value - j.CreatedAt).TotalSeconds).ToList();
            table.AppendLine($"| {name} | {jobs.Count} | {jobs.Sum(Overlap) / total * 100:F1} % | {Mean(waits):F1} s | {waits.DefaultIfEmpty().Max():F1} s |");
            log.WriteLine($"  {name}: share {jobs.Sum(Overlap) / total * 100:F1} %, mean wait {Mean(waits):F1} s");
        }
        return table.ToString();
    }

    private static DateTime Min(DateTime a, DateTime b) => a < b ? a : b;

    private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;

    private static double Mean(IEnumerable<double> values) => values.DefaultIfEmpty().Average();

    private static string Pct(int part, int whole) => $"{part * 100.0 / whole:F0} %";

    /// <summary>Nearest-rank percentile of an ascending list.</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double p) =>
        sorted.Count == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Count) - 1, 0, sorted.Count - 1)];
}
