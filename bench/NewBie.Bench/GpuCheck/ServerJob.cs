using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace NewBie.Bench.GpuCheck;

/// <summary>
/// Jobs through a real server process: starts the published NewBie binary beside this one (<c>serve</c> on a
/// loopback port, fresh data folder), waits for /readyz, submits <c>--jobs</c> jobs one after another over HTTP and
/// reads each job record's started_at..finished_at (text encoding, every step, VAE decode and PNG written). The first
/// job of a fresh process carries the warm-up (kernel selection, allocator growth); images/hour comes from the last.
/// </summary>
internal static partial class ServerJob
{
    public static async Task<int> RunAsync(Args a)
    {
        var data = a.Get("data") ?? throw new ArgumentException("server-job needs --data DIR");
        var model = a.Get("model", "tiny");
        var size = a.Int("size", 1024);
        var steps = a.Int("steps", 28);
        var jobs = a.Int("jobs", 2);
        var server = Path.Combine(AppContext.BaseDirectory, OperatingSystem.IsWindows() ? "NewBie.exe" : "NewBie");
        Directory.CreateDirectory(data);
        var start = new ProcessStartInfo(server) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = data };
        foreach (var arg in new[] { "serve", "--urls", "http://127.0.0.1:0", "--data-dir", data, "--models-dir", a.Get("models-dir") ?? Path.Combine(data, "models"), "--model", model })
            start.ArgumentList.Add(arg);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {server}");
        var stderr = process.StandardError.ReadToEndAsync();
        var rows = new List<string>();
        try
        {
            var url = await ListenUrl(process, TimeSpan.FromSeconds(120));
            using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
            await WaitReady(http, process, TimeSpan.FromSeconds(a.Int("ready-timeout", 300)));
            var ready = clock.Elapsed;
            Console.WriteLine($"server-job: {model} ready after {ready.TotalSeconds:F1} s at {url}");
            double last = 0;
            for (var i = 0; i < jobs; i++)
            {
                var submitted = Stopwatch.StartNew();
                using var response = await http.PostAsJsonAsync("/v1/jobs", new { prompt = "<character_1><n>gpu check</n></character_1>", width = size, height = size, steps, seed = 1 + i });
                var body = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"submit answered {(int)response.StatusCode}: {body}");
                var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString();
                var job = await WaitDone(http, id!, TimeSpan.FromSeconds(a.Int("job-timeout", 300)));
                var status = job.GetProperty("status").GetString();
                if (status != "succeeded") throw new InvalidOperationException($"job {id} ended {status}: {job}");
                var run = (job.GetProperty("finished_at").GetDateTime() - job.GetProperty("started_at").GetDateTime()).TotalSeconds;
                last = run;
                Console.WriteLine($"server-job: job {i + 1} {run:F2} s (submit to done {submitted.Elapsed.TotalSeconds:F2} s)");
                rows.Add($"| {i + 1}{(i == 0 ? " (first of a fresh process)" : "")} | {run:F2} s | {submitted.Elapsed.TotalSeconds:F2} s |");
            }
            List<string> lines =
            [
                $"Server `serve --model {model}` ready {ready.TotalSeconds:F1} s after start; {size}², {steps} steps, CFG every step, one image per job, jobs one after another.",
                "",
                "| job | started → finished | submit → succeeded seen |",
                "|---|---|---|",
                .. rows,
                "",
                $"**{last:F2} s per image, {3600 / last:F0} images per hour** (last job; one GPU worker, jobs back to back).",
            ];
            if (a.Get("report") is { } report) File.AppendAllText(report, string.Join("\n", lines) + "\n\n");
            return 0;
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
            var errors = await stderr;
            if (errors.Length > 0) Console.WriteLine("server stderr:\n" + errors[^Math.Min(errors.Length, 4000)..]);
        }
    }

    private static async Task<string> ListenUrl(Process process, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        while (await process.StandardOutput.ReadLineAsync(cancel.Token) is { } line)
        {
            Console.WriteLine("server: " + line);
            if (ListeningOn().Match(line) is not { Success: true } match) continue;
            // Keep draining stdout into the log: a child blocked on a full pipe would look like a hung server.
            _ = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync() is { } more) Console.WriteLine("server: " + more);
            });
            return match.Groups[1].Value;
        }
        throw new InvalidOperationException($"the server exited before listening (exit {(process.HasExited ? process.ExitCode : -1)})");
    }

    /// <summary>
    /// /readyz?wait= holds each answer until the model has loaded (or N seconds passed), so this asks again only after
    /// loading ended or a held answer ran out; should a check without an event to wait on (storage, queue) still say
    /// not ready, it asks again after a second.
    /// </summary>
    private static async Task WaitReady(HttpClient http, Process process, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero) throw new TimeoutException($"the server was not ready after {timeout}");
            // Held under the client's 30 s timeout.
            var wait = (int)Math.Clamp(Math.Ceiling(left.TotalSeconds), 1, 20);
            var answered = DateTime.UtcNow;
            try
            {
                using var response = await http.GetAsync($"/readyz?wait={wait}");
                if (response.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (process.HasExited) throw new InvalidOperationException($"the server exited ({process.ExitCode}) before it was ready");
            // An answer that came back at once (not held: nothing left to wait for) is not asked again at once.
            if (DateTime.UtcNow - answered < TimeSpan.FromSeconds(1)) await Task.Delay(1000);
        }
    }

    /// <summary>The job once it finished: its event stream ends with the done event, then the record is read.</summary>
    private static async Task<JsonElement> WaitDone(HttpClient http, string id, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            using var response = await http.GetAsync($"/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            response.EnsureSuccessStatusCode();
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
            while (await events.ReadLineAsync(cancel.Token) is { } line && line != "event: done") { }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            throw new TimeoutException($"job {id} not done after {timeout}: {await http.GetStringAsync($"/v1/jobs/{id}")}");
        }
        var job = JsonDocument.Parse(await http.GetStringAsync($"/v1/jobs/{id}")).RootElement;
        if (job.GetProperty("status").GetString() is "succeeded" or "failed" or "canceled" or "expired") return job;
        throw new InvalidOperationException($"the event stream of job {id} ended before the job did: {job}");
    }

    [GeneratedRegex(@"Now listening on:?\s*""?(http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
