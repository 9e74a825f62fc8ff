using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace NewBie.LoadBench;

/// <summary>What a fault run found; <see cref="Problems"/> empty means it passed.</summary>
internal sealed record FaultReport(string Name, IReadOnlyDictionary<string, string> Figures, IReadOnlyList<string> Problems, string? Skipped = null)
{
    public bool Passed => Skipped is null && Problems.Count == 0;

    public override string ToString() =>
        $"{Name}: {(Skipped is not null ? "skipped: " + Skipped : Passed ? "passed" : "FAILED")} " +
        string.Join(", ", Figures.Select(f => $"{f.Key}={f.Value}")) +
        (Problems.Count > 0 ? "\n  " + string.Join("\n  ", Problems.Take(20)) : "");
}

/// <summary>
/// The fault runs of issue 11 against real server processes: SIGKILL at random moments with restarts, a full outputs
/// volume (a private tmpfs), and malformed requests. The bench runs the long forms, NewBie.Host.Tests the short ones.
/// </summary>
internal static class FaultRuns
{
    /// <summary>Limits out of the way, so that only the fault under test refuses anything.</summary>
    public static readonly string[] OpenLimits =
    [
        "Accounts:RateLimits:KeyBurst=100000", "Accounts:RateLimits:GlobalPerSecond=100000", "Accounts:RateLimits:GlobalPerHour=1000000",
        "Accounts:Defaults:MaxQueuedJobs=100000", "Accounts:Defaults:ImagesPerDay=1000000", "Jobs:MaxQueuedJobs=100000",
        "Serilog:MinimumLevel:Default=Warning", "Serilog:MinimumLevel:Override:Microsoft.Hosting.Lifetime=Information", "Logs:JsonFile=false",
    ];

    // ---------------------------------------------------------------- SIGKILL with restarts

    /// <summary>
    /// Submits <paramref name="jobs"/> jobs (each under its own Idempotency-Key, retried across restarts) while the server
    /// is SIGKILLed <paramref name="kills"/> times at random moments and restarted on the same data folder; then every
    /// accepted job must have succeeded exactly once with one whole PNG, and nothing else may be in the store or on disk.
    /// </summary>
    public static async Task<FaultReport> KillRestartAsync(string dataDir, int jobs, int kills, int seed, TextWriter log)
    {
        var problems = new List<string>();
        // Two generators: the kill moments and the submit pacing run concurrently, and Random is not thread-safe.
        var rng = new Random(seed);
        var pacing = new Random(seed + 1);
        var admin = await ServerProcess.CreateUserAsync(dataDir, "admin", admin: true);
        var keys = new List<string>();
        for (var u = 0; u < 3; u++) keys.Add(await ServerProcess.CreateUserAsync(dataDir, $"user{u}"));
        // A job may be cut short by several kills in a row; it must still end succeeded, not worker_lost.
        string[] settings = [.. OpenLimits, "Jobs:MaxAttempts=50"];

        var server = await ServerProcess.StartAsync(dataDir, settings);
        await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
        var current = server;
        using var adminClient = new BenchClient(() => current.Url, admin, TimeSpan.FromSeconds(20));
        var clients = keys.Select(k => new BenchClient(() => current.Url, k, TimeSpan.FromSeconds(20))).ToList();
        var accepted = new Dictionary<string, HashSet<string>>(); // idempotency key → ids answered for it
        var submitErrors = 0;
        var restarts = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            var submitting = Task.Run(async () =>
            {
                for (var i = 0; i < jobs; i++)
                {
                    var key = $"kill-{seed}-{i}";
                    var client = clients[i % clients.Count];
                    while (true)
                    {
                        try
                        {
                            var answer = await client.SubmitAsync(BenchClient.Job($"<character_1><n>kill {i}</n></character_1>", i, steps: 2), key);
                            if (answer.Status == 202)
                            {
                                lock (accepted)
                                {
                                    if (!accepted.TryGetValue(key, out var ids)) accepted[key] = ids = [];
                                    ids.Add(answer.Id!);
                                }
                                break;
                            }
                            // model_not_ready right after a restart: the next try finds it loaded.
                            if (answer.Status is not (503 or 500))
                            {
                                lock (problems) problems.Add($"submit {i} answered {answer.Status} {answer.Code}");
                                break;
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            // The server was killed under this request: whether it was stored or not, the same key retries.
                            Interlocked.Increment(ref submitErrors);
                        }
                        await Task.Delay(50);
                    }
                    await Task.Delay(pacing.Next(0, 40));
                }
            });

            for (var k = 0; k < kills; k++)
            {
                // Random moments: while submits arrive, while jobs run, while outputs are written.
                await Task.Delay(TimeSpan.FromMilliseconds(300 + rng.Next(0, 2500)));
                await current.KillAsync();
                current.Process.Dispose();
                current = await ServerProcess.StartAsync(dataDir, settings);
                restarts++;
                log.WriteLine($"  kill {k + 1}/{kills} at {clock.Elapsed.TotalSeconds:F1} s, restarted on {current.Url}");
                await current.WaitReadyAsync(TimeSpan.FromMinutes(3));
            }
            await submitting;

            var ids = accepted.Values.SelectMany(v => v).ToHashSet();
            var finished = await adminClient.WaitFinishedAsync(ids, TimeSpan.FromMinutes(10));
            var lost = 0;
            var failed = 0;
            var badImages = 0;
            foreach (var id in ids)
            {
                if (!finished.TryGetValue(id, out var job) || !job.IsFinished) { lost++; problems.Add($"job {id} is {(finished.TryGetValue(id, out var j) ? j.Status : "gone")}"); continue; }
                if (job.Status != "succeeded") { failed++; problems.Add($"job {id} ended {job.Status} ({job.ErrorCode})"); continue; }
                if (job.Images != 1) problems.Add($"job {id} lists {job.Images} images");
                var bytes = await clients[0].ImageAsync(id, 0) ?? await adminClient.ImageAsync(id, 0);
                if (bytes is null || !Png.IsWhole(bytes)) { badImages++; problems.Add($"job {id}: image 0 is not a whole PNG"); }
            }
            var duplicatedKeys = accepted.Count(a => a.Value.Count > 1);
            if (duplicatedKeys > 0) problems.Add($"{duplicatedKeys} idempotency keys answered more than one job id");
            var extraJobs = finished.Count - ids.Count;
            if (extraJobs != 0) problems.Add($"the store holds {finished.Count} jobs for {ids.Count} accepted");
            if (accepted.Count != jobs) problems.Add($"{accepted.Count} of {jobs} submits were accepted");

            // On disk: exactly one folder with one PNG per job, no temp files, no folder of a job the store does not have.
            var outputs = Path.Combine(dataDir, "outputs");
            var folders = Directory.Exists(outputs) ? Directory.GetDirectories(outputs).SelectMany(Directory.GetDirectories).ToList() : [];
            var pngs = Directory.Exists(outputs) ? Directory.GetFiles(outputs, "*.png", SearchOption.AllDirectories) : [];
            var temps = Directory.Exists(outputs) ? Directory.GetFiles(outputs, "*.tmp", SearchOption.AllDirectories) : [];
            var duplicatedOutputs = folders.GroupBy(Path.GetFileName).Count(g => g.Count() > 1) + folders.Count(f => Directory.GetFiles(f, "*.png").Length != 1);
            if (folders.Count != ids.Count || pngs.Length != ids.Count) problems.Add($"{folders.Count} output folders and {pngs.Length} PNGs for {ids.Count} jobs");
            if (duplicatedOutputs > 0) problems.Add($"{duplicatedOutputs} jobs have more than one output set");
            if (temps.Length > 0) problems.Add($"{temps.Length} temp files left in outputs/");
            if (folders.Any(f => !ids.Contains(Path.GetFileName(f)))) problems.Add("an output folder belongs to no accepted job");
            foreach (var png in pngs.Where(p => !Png.IsWhole(File.ReadAllBytes(p)))) problems.Add($"{png} is torn");

            var reruns = finished.Values.Count(j => j.Attempts > 1);
            return new FaultReport("kill -9 with restarts", new Dictionary<string, string>
            {
                ["jobs"] = jobs.ToString(), ["kills"] = restarts.ToString(), ["accepted"] = ids.Count.ToString(),
                ["succeeded"] = finished.Values.Count(j => j.Status == "succeeded" && ids.Contains(j.Id)).ToString(),
                ["lost"] = lost.ToString(), ["failed"] = failed.ToString(), ["duplicated_outputs"] = duplicatedOutputs.ToString(),
                ["duplicated_jobs"] = (duplicatedKeys + Math.Max(0, extraJobs)).ToString(), ["torn_images"] = badImages.ToString(),
                ["jobs_rerun_after_a_kill"] = reruns.ToString(), ["submit_retries_while_down"] = submitErrors.ToString(),
                ["seconds"] = clock.Elapsed.TotalSeconds.ToString("F0"),
            }, problems);
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
            await current.DisposeAsync();
        }
    }

    // ---------------------------------------------------------------- disk full

    /// <summary>Whether this process may mount a tmpfs in a private mount namespace (root, unshare and mount present).</summary>
    public static async Task<string?> WhyNoPrivateTmpfsAsync()
    {
        if (!OperatingSystem.IsLinux()) return "not Linux";
        var probe = Directory.CreateTempSubdirectory("newbie-mount-").FullName;
        try
        {
            var start = new ProcessStartInfo("unshare") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "-m", "--propagation", "private", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe }) start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            var err = await process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return process.ExitCode == 0 ? null : $"unshare -m + mount -t tmpfs failed ({process.ExitCode}): {err.Trim()}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"unshare is not available ({e.Message})";
        }
        finally
        {
            Directory.Delete(probe);
        }
    }

    /// <summary>
    /// The server runs with outputs/ on a private tmpfs of <paramref name="volumeMiB"/> MiB (its own mount namespace, so
    /// nothing leaks onto the host); the run reaches that volume through /proc/PID/root. Filling it must answer new work
    /// 507 insufficient_storage and /readyz "low disk space"; a job whose images meet a full disk must fail with
    /// insufficient_storage and leave no temp file; earlier images must stay intact; freeing space must restore service.
    /// </summary>
    public static async Task<FaultReport> DiskFullAsync(string dataDir, TextWriter log, int volumeMiB = 8, int goodJobs = 3)
    {
        const string name = "disk full on the outputs volume";
        if (await WhyNoPrivateTmpfsAsync() is { } why) return new FaultReport(name, new Dictionary<string, string>(), [], why);
        var problems = new List<string>();
        const long floor = 2 * 1024 * 1024;
        var admin = await ServerProcess.CreateUserAsync(dataDir, "admin", admin: true);
        var key = await ServerProcess.CreateUserAsync(dataDir, "user0");
        var outputs = Path.Combine(dataDir, "outputs");
        Directory.CreateDirectory(outputs);
        string[] wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            $"mount -t tmpfs -o size={volumeMiB}m tmpfs \"$0\" && exec \"$@\"", outputs];
        await using var server = await ServerProcess.StartAsync(dataDir, [.. OpenLimits, $"Storage:MinFreeBytes={floor}"], wrapper);
        await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
        // The server's view of outputs/ (its tmpfs), from outside its mount namespace.
        var volume = $"/proc/{server.Process.Id}/root{outputs}";
        using var client = new BenchClient(() => server.Url, key);
        using var adminClient = new BenchClient(() => server.Url, admin);
        var figures = new Dictionary<string, string> { ["volume"] = $"{volumeMiB} MiB tmpfs", ["Storage:MinFreeBytes"] = $"{floor}" };

        // 1. Some finished jobs whose images must survive everything below.
        var good = new List<string>();
        for (var i = 0; i < goodJobs; i++) good.Add((await client.SubmitAsync(BenchClient.Job("<character_1><n>keep</n></character_1>", i, steps: 2))).Id!);
        await client.WaitFinishedAsync(good, TimeSpan.FromMinutes(3));
        var before = new Dictionary<string, byte[]>();
        foreach (var id in good) before[id] = await client.ImageAsync(id, 0) ?? [];
        if (before.Values.Any(b => !Png.IsWhole(b))) problems.Add("a first image is not a whole PNG");

        // 2. Below the floor: new work is refused with 507 on every submit route, and /readyz says why.
        var filler = Path.Combine(volume, "filler-1");
        FillTo(volume, filler, floor - 512 * 1024);
        await Task.Delay(1200); // the free-space answer is cached for a second
        var refused = new List<Submitted>();
        foreach (var path in new[] { "/v1/jobs", "/generate" })
            for (var i = 0; i < 5; i++) refused.Add(await client.SubmitAsync(BenchClient.Job("x", i, steps: 2), path: path));
        var openAi = await client.SubmitAsync(new { prompt = "x", size = "256x256", steps = 2 }, path: "/v1/images/generations");
        var refused507 = refused.Count(r => r.Status == 507 && r.Code == "insufficient_storage") + (openAi.Status == 507 ? 1 : 0);
        if (refused507 != refused.Count + 1) problems.Add($"below the floor only {refused507} of {refused.Count + 1} submits answered 507 insufficient_storage ({string.Join(",", refused.Select(r => r.Status).Append(openAi.Status))})");
        using (var retry = await client.Http.PostAsync(server.Url + "/v1/jobs", JsonContent.Create(BenchClient.Job("x", 1, steps: 2))))
            if (retry.Headers.RetryAfter?.Delta is null) problems.Add("507 without Retry-After");
        // Only admins read why (anonymous callers and users see ready or not_ready).
        using (var ready = await adminClient.Http.GetAsync(server.Url + "/readyz"))
        {
            var text = await ready.Content.ReadAsStringAsync();
            figures["readyz_when_low"] = $"{(int)ready.StatusCode}";
            if ((int)ready.StatusCode != 503 || !text.Contains("low disk space", StringComparison.Ordinal)) problems.Add($"/readyz when low: {(int)ready.StatusCode} {text}");
        }
        figures["refused_507"] = $"{refused507}/{refused.Count + 1}";

        // 3. A job accepted while there was room, whose images then meet a full disk: fails insufficient_storage, cleanly.
        File.Delete(filler);
        if (await adminClient.PostAsync("/v1/admin/queue/pause") != 200) problems.Add("could not pause the queue");
        await Task.Delay(1200);
        var doomed = await client.SubmitAsync(BenchClient.Job("<character_1><n>doomed</n></character_1>", 7, steps: 2));
        if (doomed.Status != 202) problems.Add($"with room again the submit answered {doomed.Status} {doomed.Code}");
        FillTo(volume, filler, 0);
        await adminClient.PostAsync("/v1/admin/queue/resume");
        if (doomed.Id is { } doomedId)
        {
            var end = (await client.WaitFinishedAsync([doomedId], TimeSpan.FromMinutes(3)))[doomedId];
            figures["job_meeting_full_disk"] = $"{end.Status} ({end.ErrorCode})";
            if (end.Status != "failed" || end.ErrorCode != "insufficient_storage") problems.Add($"the job that met a full disk ended {end.Status} ({end.ErrorCode})");
            if (Directory.GetDirectories(volume, doomedId, SearchOption.AllDirectories).Length > 0) problems.Add("the failed job left an output folder");
        }
        var temps = Directory.GetFiles(volume, "*.tmp", SearchOption.AllDirectories);
        if (temps.Length > 0) problems.Add($"{temps.Length} temp files left on the full volume");

        // 4. Space returns: service comes back without a restart, and nothing written before was harmed.
        File.Delete(filler);
        await Task.Delay(1200);
        var after = await client.SubmitAsync(BenchClient.Job("<character_1><n>after</n></character_1>", 9, steps: 2));
        if (after.Status != 202) problems.Add($"after freeing space the submit answered {after.Status} {after.Code}");
        else
        {
            var end = (await client.WaitFinishedAsync([after.Id!], TimeSpan.FromMinutes(3)))[after.Id!];
            if (end.Status != "succeeded") problems.Add($"after freeing space the job ended {end.Status} ({end.ErrorCode})");
            figures["recovered"] = end.Status == "succeeded" ? "yes" : "no";
        }
        foreach (var (id, bytes) in before)
            if (!(await client.ImageAsync(id, 0) ?? []).AsSpan().SequenceEqual(bytes)) problems.Add($"the image of {id} changed");
        foreach (var png in Directory.GetFiles(volume, "*.png", SearchOption.AllDirectories))
            if (!Png.IsWhole(File.ReadAllBytes(png))) problems.Add($"{png} is torn");
        var all = await adminClient.AllJobsAsync();
        figures["jobs_in_store"] = all.Count.ToString();
        if (all.Count != goodJobs + 2) problems.Add($"the store holds {all.Count} jobs, expected {goodJobs + 2}");
        using (var ready = await client.Http.GetAsync(server.Url + "/readyz"))
            if (!ready.IsSuccessStatusCode) problems.Add($"/readyz after freeing space: {(int)ready.StatusCode}");
        log.WriteLine($"  {string.Join(", ", figures.Select(f => $"{f.Key}={f.Value}"))}");
        return new FaultReport(name, figures, problems);
    }

    /// <summary>
    /// The whole data folder (app.db, hangfire.db, outputs/, the tiny model) on a private tmpfs of
    /// <paramref name="volumeMiB"/> MiB with Storage:MinFreeBytes=0, so that the free-space check cannot refuse first and
    /// LiteDB's own writes meet the full disk. Filled while jobs are queued: every submit route must answer 507
    /// insufficient_storage (problem+json, Retry-After) and store nothing; the worker, resumed on the full disk, must lose
    /// no job. Then space is freed and the server restarted on the same folder: every job accepted before finishes, a
    /// new submit is accepted, and after the server stops both databases open and every collection reads whole.
    /// </summary>
    public static async Task<FaultReport> DataVolumeFullAsync(string dataDir, TextWriter log, int volumeMiB = 64, int queuedJobs = 3)
    {
        const string name = "disk full on the data volume (LiteDB's files)";
        if (await WhyNoPrivateTmpfsAsync() is { } why) return new FaultReport(name, new Dictionary<string, string>(), [], why);
        var problems = new List<string>();
        var seed = Path.Combine(dataDir, "seed");
        var admin = await ServerProcess.CreateUserAsync(seed, "admin", admin: true);
        var key = await ServerProcess.CreateUserAsync(seed, "user0");
        await using var volume = await PrivateVolume.MountAsync(Path.Combine(dataDir, "volume"), volumeMiB, seed);
        string[] settings = [.. OpenLimits, "Storage:MinFreeBytes=0"];
        var server = await ServerProcess.StartAsync(volume.MountPoint, settings, volume.Enter);
        var figures = new Dictionary<string, string> { ["volume"] = $"{volumeMiB} MiB tmpfs holding the whole data folder", ["Storage:MinFreeBytes"] = "0" };
        try
        {
            await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
            using var client = new BenchClient(() => server.Url, key);
            using var adminClient = new BenchClient(() => server.Url, admin);

            // 1. Finished jobs whose images must survive, and queued ones (the GPU queue paused) that must finish after recovery.
            var done = new List<string>();
            for (var i = 0; i < 2; i++) done.Add((await client.SubmitAsync(BenchClient.Job("<character_1><n>done</n></character_1>", i, steps: 2))).Id!);
            await client.WaitFinishedAsync(done, TimeSpan.FromMinutes(3));
            var images = new Dictionary<string, byte[]>();
            foreach (var id in done) images[id] = await client.ImageAsync(id, 0) ?? [];
            if (images.Values.Any(b => !Png.IsWhole(b))) problems.Add("a first image is not a whole PNG");
            if (await adminClient.PostAsync("/v1/admin/queue/pause") != 200) problems.Add("could not pause the queue");
            // A long job first (FIFO for one user): it runs while the disk fills, so its images and status writes meet it.
            var running = await client.SubmitAsync(BenchClient.Job("<character_1><n>running</n></character_1>", 9, steps: 16, size: 512), "running");
            if (running.Status != 202) problems.Add($"the long job answered {running.Status} {running.Code}");
            var queued = new List<string>();
            for (var i = 0; i < queuedJobs; i++)
            {
                var answer = await client.SubmitAsync(BenchClient.Job("<character_1><n>queued</n></character_1>", 10 + i, steps: 2), $"queued-{i}");
                if (answer.Status == 202) queued.Add(answer.Id!);
                else problems.Add($"a submit with room answered {answer.Status} {answer.Code}");
            }

            // 2. The volume full to the last byte while the long job runs: every submit route answers 507 problem+json
            // with Retry-After, and the worker's writes (images, then the status) fail mid-run.
            await adminClient.PostAsync("/v1/admin/queue/resume");
            var runningSeen = await client.WaitStatusAsync(running.Id!, "running", TimeSpan.FromMinutes(1));
            var filler = Path.Combine(volume.Outside, "filler");
            FillTo(volume.Outside, filler, 0);
            if (!runningSeen) problems.Add("the long job was not seen running before the disk filled");
            figures["free_bytes_when_full"] = new DriveInfo(volume.Outside).AvailableFreeSpace.ToString();
            var answers = new List<string>();
            var refused = 0;
            var attempts = 0;
            foreach (var (path, body) in new (string, object)[]
            {
                ("/v1/jobs", BenchClient.Job("<character_1><n>full</n></character_1>", 20, steps: 2)),
                ("/generate", BenchClient.Job("<character_1><n>full</n></character_1>", 21, steps: 2)),
                ("/v1/images/generations", new { prompt = "full", size = "256x256", steps = 2 }),
            })
            {
                for (var i = 0; i < 3; i++)
                {
                    attempts++;
                    using var response = await client.Http.PostAsync(server.Url + path, JsonContent.Create(body));
                    var text = await response.Content.ReadAsStringAsync();
                    var ok = (int)response.StatusCode == 507 && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                        && text.Contains("\"code\":\"insufficient_storage\"", StringComparison.Ordinal) && response.Headers.RetryAfter?.Delta is not null;
                    if (ok) refused++;
                    else answers.Add($"{path} → {(int)response.StatusCode} {response.Content.Headers.ContentType?.MediaType} {text[..Math.Min(200, text.Length)]}");
                }
            }
            figures["refused_507"] = $"{refused}/{attempts}";
            if (refused != attempts) problems.Add($"on the full volume only {refused} of {attempts} submits answered 507 problem+json with Retry-After: {string.Join("; ", answers.Distinct())}");

            // 3. Not ready: LiteDB refuses every operation on a database whose write failed until it is reopened, so
            // even anonymous probes (the loopback rule reads the users) fail until the restart below.
            using (var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(10) })
            {
                using var alive = await probe.GetAsync(server.Url + "/healthz");
                using var ready = await probe.GetAsync(server.Url + "/readyz");
                figures["healthz_readyz_when_full"] = $"{(int)alive.StatusCode} {(int)ready.StatusCode}";
                if (ready.IsSuccessStatusCode) problems.Add("/readyz said ready on the full volume");
            }

            // 4. Space freed, the server restarted on the same data folder.
            File.Delete(filler);
            await server.DisposeAsync();
            server = await ServerProcess.StartAsync(volume.MountPoint, settings, volume.Enter);
            await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
            // The long job: its run met the full disk; it must run again and succeed, or have failed insufficient_storage.
            var longJob = (await adminClient.WaitFinishedAsync([running.Id!], TimeSpan.FromMinutes(3)))[running.Id!];
            figures["job_running_when_full"] = $"{longJob.Status}{(longJob.ErrorCode is null ? "" : $" ({longJob.ErrorCode})")}, attempts {longJob.Attempts}";
            // Its last writes failed, so the record still said running: the restart runs it again (a second attempt).
            if (longJob.Status != "succeeded" || longJob.Attempts < 2)
                problems.Add($"the job running when the disk filled ended {longJob.Status} ({longJob.ErrorCode}) after {longJob.Attempts} attempts, not re-run to success");
            var finished = await adminClient.WaitFinishedAsync(queued, TimeSpan.FromMinutes(3));
            foreach (var id in queued)
            {
                if (!finished.TryGetValue(id, out var job)) problems.Add($"queued job {id} is gone after the restart");
                else if (job.Status != "succeeded") problems.Add($"queued job {id} ended {job.Status} ({job.ErrorCode}) after the restart");
                else if (await client.ImageAsync(id, 0) is not { } png || !Png.IsWhole(png)) problems.Add($"queued job {id}: image 0 is not a whole PNG");
            }
            figures["queued_jobs_after_restart"] = string.Join(" ", finished.Values.Where(j => queued.Contains(j.Id)).GroupBy(j => j.Status).Select(g => $"{g.Key}×{g.Count()}"));
            foreach (var (id, bytes) in images)
                if (!(await client.ImageAsync(id, 0) ?? []).AsSpan().SequenceEqual(bytes)) problems.Add($"the image of {id} changed");
            var after = await client.SubmitAsync(BenchClient.Job("<character_1><n>after</n></character_1>", 30, steps: 2));
            if (after.Status != 202) problems.Add($"after the restart a submit answered {after.Status} {after.Code}");
            else if ((await client.WaitFinishedAsync([after.Id!], TimeSpan.FromMinutes(3)))[after.Id!] is { Status: not "succeeded" } bad)
                problems.Add($"after the restart a new job ended {bad.Status} ({bad.ErrorCode})");
            // Nothing half-written: the store holds exactly the jobs answered 202.
            var all = await adminClient.AllJobsAsync();
            var accepted = done.Count + 1 + queued.Count + 1;
            figures["jobs_in_store"] = $"{all.Count} (accepted {accepted})";
            if (all.Count != accepted) problems.Add($"the store holds {all.Count} jobs for {accepted} accepted: a refused submit was stored");
            figures["recovered"] = problems.Count == 0 ? "yes" : "no";
        }
        finally
        {
            await server.DisposeAsync();
        }

        // 5. Both databases open in LiteDB, and every document of every collection reads.
        var read = new List<string>();
        foreach (var file in new[] { "app.db", "hangfire.db" })
        {
            try
            {
                using var db = new LiteDB.LiteDatabase(new LiteDB.ConnectionString { Filename = Path.Combine(volume.Outside, file), Connection = LiteDB.ConnectionType.Direct });
                var documents = db.GetCollectionNames().Sum(c => db.GetCollection(c).FindAll().Count());
                read.Add($"{file} {documents} documents");
            }
            catch (Exception e) when (e is LiteDB.LiteException or IOException or InvalidOperationException)
            {
                problems.Add($"{file} does not read whole after the disk was full: {e.GetType().Name} {e.Message}");
            }
        }
        figures["databases_read"] = string.Join(", ", read);
        log.WriteLine($"  {string.Join(", ", figures.Select(f => $"{f.Key}={f.Value}"))}");
        return new FaultReport(name, figures, problems);
    }

    /// <summary>Grows <paramref name="filler"/> until the volume has about <paramref name="leave"/> bytes free (0: until ENOSPC).</summary>
    private static void FillTo(string volume, string filler, long leave)
    {
        var chunk = new byte[64 * 1024];
        using var stream = new FileStream(filler, FileMode.Append, FileAccess.Write);
        try
        {
            while (new DriveInfo(volume).AvailableFreeSpace > leave + chunk.Length || (leave == 0 && new DriveInfo(volume).AvailableFreeSpace > 0))
            {
                stream.Write(chunk);
                stream.Flush();
            }
        }
        catch (IOException) when (leave == 0) { }
    }

    // ---------------------------------------------------------------- malformed requests

    /// <summary>
    /// Sends at least <paramref name="count"/> malformed requests (bad JSON, XML bombs and external entities, 10 MB
    /// prompts, wrong types, huge sizes, unicode edge cases, bad ids and headers) to every submit route: each must be
    /// answered 4xx within the client timeout, /healthz must answer throughout, and the store (jobs, users, outputs/)
    /// must be identical before and after.
    /// </summary>
    public static async Task<FaultReport> MalformedAsync(string dataDir, int count, TextWriter log)
    {
        var problems = new List<string>();
        await using var run = await ProbedServer.StartAsync(dataDir);
        var (server, client, adminClient, key, admin, seeded, before) = (run.Server, run.Client, run.Admin, run.Client.Key!, run.Admin.Key!, run.Seeded, run.Before);

        var cases = MalformedCases.All(seeded[0]).ToList();
        while (cases.Count < count) cases.AddRange(MalformedCases.All(seeded[0]).Take(count - cases.Count));
        var clock = Stopwatch.StartNew();
        var (statuses, bad) = await SendAllAsync(server.Url, client.Http, cases.Select(c => (c, key)).ToList(), status => status is >= 400 and < 500, problems);
        var after = await SnapshotAsync(adminClient, dataDir);
        if (after != before) problems.Add($"the store changed:\n--- before\n{before}\n--- after\n{after}");

        var figures = new Dictionary<string, string>
        {
            ["requests"] = cases.Count.ToString(), ["kinds"] = MalformedCases.All(seeded[0]).Count().ToString(),
            ["answers"] = string.Join(" ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}")),
            ["non_4xx"] = bad.ToString(), ["store_unchanged"] = (after == before ? "yes" : "no"),
            ["seconds"] = clock.Elapsed.TotalSeconds.ToString("F1"),
        };
        log.WriteLine($"  {string.Join(", ", figures.Select(f => $"{f.Key}={f.Value}"))}");
        return new FaultReport("malformed requests", figures, problems);
    }

    /// <summary>
    /// The fuzz run: every case <see cref="OpenApiFuzz"/> generates from the server's /openapi/v1.json, sent once with a
    /// user's key and once with an admin's. No answer may be 5xx (or a timeout or dropped connection), /healthz must
    /// answer throughout and after, and the store (jobs, users, outputs/) must be identical before and after.
    /// </summary>
    public static async Task<FaultReport> OpenApiFuzzAsync(string dataDir, TextWriter log)
    {
        var problems = new List<string>();
        await using var run = await ProbedServer.StartAsync(dataDir);
        var (server, client, adminClient, key, admin, seeded, before) = (run.Server, run.Client, run.Admin, run.Client.Key!, run.Admin.Key!, run.Seeded, run.Before);

        var document = await OpenApiFuzz.DocumentAsync(client.Http, server.Url);
        var generated = OpenApiFuzz.Cases(document).ToList();
        var cases = generated.Select(c => (c, key)).Concat(generated.Select(c => (c with { Name = "admin: " + c.Name }, admin))).ToList();
        var clock = Stopwatch.StartNew();
        var (statuses, bad) = await SendAllAsync(server.Url, client.Http, cases, status => status is >= 100 and < 500, problems);
        var after = await SnapshotAsync(adminClient, dataDir);
        if (after != before) problems.Add($"the store changed:\n--- before\n{before}\n--- after\n{after}");

        var figures = new Dictionary<string, string>
        {
            ["operations"] = document.GetProperty("paths").EnumerateObject().Sum(p => p.Value.EnumerateObject().Count()).ToString(),
            ["requests"] = cases.Count.ToString(),
            ["answers"] = string.Join(" ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}×{s.Value}")),
            ["5xx_or_dropped"] = bad.ToString(), ["store_unchanged"] = (after == before ? "yes" : "no"),
            ["seconds"] = clock.Elapsed.TotalSeconds.ToString("F1"),
        };
        log.WriteLine($"  {string.Join(", ", figures.Select(f => $"{f.Key}={f.Value}"))}");
        return new FaultReport("OpenAPI fuzz", figures, problems);
    }

    /// <summary>
    /// Sends every case (8 at a time) with its key while /healthz is polled; a status <paramref name="accept"/> refuses,
    /// a timeout or a dropped connection is a problem. Returns the count per status and how many were refused.
    /// </summary>
    private static async Task<(IReadOnlyDictionary<int, int> Statuses, int Bad)> SendAllAsync(string url, HttpClient http,
        IReadOnlyList<(MalformedCase Case, string Key)> cases, Func<int, bool> accept, List<string> problems)
    {
        var statuses = new System.Collections.Concurrent.ConcurrentDictionary<int, int>();
        var bad = new System.Collections.Concurrent.ConcurrentBag<string>();
        var healthFailures = 0;
        using var stop = new CancellationTokenSource();
        var health = Task.Run(async () =>
        {
            using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            while (!stop.IsCancellationRequested)
            {
                try { if (!(await probe.GetAsync(url + "/healthz")).IsSuccessStatusCode) Interlocked.Increment(ref healthFailures); }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { Interlocked.Increment(ref healthFailures); }
                await Task.Delay(200);
            }
        });
        await Parallel.ForEachAsync(cases, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (item, _) =>
        {
            var (c, key) = item;
            int status;
            try
            {
                using var request = c.Build(url, key);
                using var response = await http.SendAsync(request);
                await response.Content.ReadAsByteArrayAsync();
                status = (int)response.StatusCode;
            }
            catch (TaskCanceledException) { status = -1; }
            catch (HttpRequestException e) { status = e.HttpRequestError == HttpRequestError.ConnectionError ? -2 : -3; }
            statuses.AddOrUpdate(status, 1, (_, n) => n + 1);
            if (!accept(status)) bad.Add($"{c.Name} → {(status == -1 ? "timeout" : status < 0 ? "connection dropped" : status.ToString())}");
        });
        await stop.CancelAsync();
        await health;
        problems.AddRange(bad.Distinct().OrderBy(b => b));
        if (healthFailures > 0) problems.Add($"/healthz failed {healthFailures} times during the run");
        using (var alive = await http.GetAsync(url + "/healthz"))
            if (!alive.IsSuccessStatusCode) problems.Add("the server is not alive afterwards");
        return (statuses, bad.Count);
    }

    /// <summary>
    /// The setup of the runs that must change nothing: a user and an admin, a server with open limits, two finished jobs
    /// (ids in <see cref="Seeded"/>) and the store's snapshot (<see cref="Before"/>) to compare with afterwards.
    /// </summary>
    private sealed class ProbedServer : IAsyncDisposable
    {
        public required ServerProcess Server { get; init; }

        public required BenchClient Client { get; init; }

        public required BenchClient Admin { get; init; }

        public required IReadOnlyList<string> Seeded { get; init; }

        public required string Before { get; init; }

        public static async Task<ProbedServer> StartAsync(string dataDir)
        {
            var admin = await ServerProcess.CreateUserAsync(dataDir, "admin", admin: true);
            var key = await ServerProcess.CreateUserAsync(dataDir, "user0");
            var server = await ServerProcess.StartAsync(dataDir, OpenLimits);
            var client = new BenchClient(() => server.Url, key, TimeSpan.FromSeconds(30));
            var adminClient = new BenchClient(() => server.Url, admin);
            try
            {
                await server.WaitReadyAsync(TimeSpan.FromMinutes(3));
                var seeded = new List<string>();
                for (var i = 0; i < 2; i++) seeded.Add((await client.SubmitAsync(BenchClient.Job("<character_1><n>before</n></character_1>", i, steps: 2))).Id!);
                await client.WaitFinishedAsync(seeded, TimeSpan.FromMinutes(3));
                return new ProbedServer { Server = server, Client = client, Admin = adminClient, Seeded = seeded, Before = await SnapshotAsync(adminClient, dataDir) };
            }
            catch
            {
                client.Dispose();
                adminClient.Dispose();
                await server.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Admin.Dispose();
            await Server.DisposeAsync();
        }
    }

    /// <summary>Jobs (id, status), users (name, role) and every file under outputs/ with its size.</summary>
    private static async Task<string> SnapshotAsync(BenchClient admin, string dataDir)
    {
        var text = new StringBuilder();
        foreach (var job in (await admin.AllJobsAsync()).OrderBy(j => j.Id)) text.AppendLine($"job {job.Id} {job.Status} {job.Images}");
        var users = await admin.Http.GetFromJsonAsync<JsonElement>(admin.Url + "/v1/admin/users");
        foreach (var user in users.EnumerateArray().Select(u => $"{u.GetProperty("name").GetString()} {u.GetProperty("role").GetString()}").Order())
            text.AppendLine($"user {user}");
        var outputs = Path.Combine(dataDir, "outputs");
        foreach (var file in Directory.GetFiles(outputs, "*", SearchOption.AllDirectories).Order())
            text.AppendLine($"file {Path.GetRelativePath(outputs, file)} {new FileInfo(file).Length}");
        return text.ToString();
    }
}

/// <summary>
/// A tmpfs in a mount namespace of its own, held by a sleeping process, so that it outlives the servers started in it
/// (<see cref="Enter"/>) and a restart finds the same files. <see cref="Outside"/> reaches it from this process
/// (/proc/PID/root); nothing is mounted on the host. Disposing ends the holder, and the tmpfs with it.
/// </summary>
internal sealed class PrivateVolume : IAsyncDisposable
{
    private readonly Process _holder;

    private PrivateVolume(Process holder, string mountPoint)
    {
        _holder = holder;
        MountPoint = mountPoint;
    }

    /// <summary>The path inside the namespace: what the server is given as its data folder.</summary>
    public string MountPoint { get; }

    public string Outside => $"/proc/{_holder.Id}/root{MountPoint}";

    /// <summary>The wrapper that runs a command inside the namespace.</summary>
    public IReadOnlyList<string> Enter => ["nsenter", "-t", _holder.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", "--"];

    /// <summary>Mounts a tmpfs of <paramref name="mebibytes"/> MiB on <paramref name="mountPoint"/>, holding a copy of <paramref name="seed"/>.</summary>
    public static async Task<PrivateVolume> MountAsync(string mountPoint, int mebibytes, string seed)
    {
        Directory.CreateDirectory(mountPoint);
        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-m", "--propagation", "private", "sh", "-c",
            $"mount -t tmpfs -o size={mebibytes}m tmpfs \"$0\" && cp -a \"$1\"/. \"$0\"/ && echo mounted && exec sleep 86400", mountPoint, seed })
            start.ArgumentList.Add(a);
        var holder = Process.Start(start)!;
        if (await holder.StandardOutput.ReadLineAsync() != "mounted")
        {
            await holder.WaitForExitAsync();
            throw new InvalidOperationException($"could not mount a private tmpfs: {await holder.StandardError.ReadToEndAsync()}");
        }
        return new PrivateVolume(holder, mountPoint);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_holder.HasExited) _holder.Kill();
        await _holder.WaitForExitAsync();
        _holder.Dispose();
    }
}
