using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace NewBie.LoadBench;

/// <summary>A submit's answer: the HTTP status, the job id when accepted, the problem code when refused.</summary>
internal sealed record Submitted(int Status, string? Id, string? Code, TimeSpan Took);

/// <summary>What the load and fault runs read of a job (GET /v1/jobs/{id}): status and the server's own timestamps.</summary>
internal sealed record JobView(string Id, string Status, string? ErrorCode, int Attempts, int Images,
    DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt)
{
    public bool IsFinished => Status is "succeeded" or "failed" or "canceled" or "expired";

    public static JobView From(JsonElement e) => new(
        e.GetProperty("id").GetString()!,
        e.GetProperty("status").GetString()!,
        e.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object ? error.GetProperty("code").GetString() : null,
        e.GetProperty("attempts").GetInt32(),
        e.GetProperty("images").GetArrayLength(),
        e.GetProperty("created_at").GetDateTime().ToUniversalTime(),
        Date(e, "started_at"),
        Date(e, "finished_at"));

    private static DateTime? Date(JsonElement e, string name) =>
        e.TryGetProperty(name, out var d) && d.ValueKind == JsonValueKind.String ? d.GetDateTime().ToUniversalTime() : null;
}

/// <summary>An API-key client of one user against a server whose URL may change (a restarted server listens elsewhere).</summary>
internal sealed class BenchClient(Func<string> url, string? key, TimeSpan? timeout = null) : IDisposable
{
    private readonly HttpClient _http = Create(key, timeout);

    public HttpClient Http => _http;

    public string Url => url();

    public string? Key => key;

    private static HttpClient Create(string? key, TimeSpan? timeout)
    {
        var http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = timeout ?? TimeSpan.FromSeconds(60),
        };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    public static object Job(string prompt, long seed, int steps = 4, int size = 256) =>
        new { prompt, width = size, height = size, steps, seed };

    public async Task<Submitted> SubmitAsync(object body, string? idempotencyKey = null, string path = "/v1/jobs")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Url + path) { Content = JsonContent.Create(body) };
        if (idempotencyKey is not null) request.Headers.Add("Idempotency-Key", idempotencyKey);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var response = await _http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var took = clock.Elapsed;
        string? id = null, code = null;
        if (text.StartsWith('{'))
        {
            using var json = JsonDocument.Parse(text);
            if (json.RootElement.TryGetProperty("id", out var i)) id = i.GetString();
            else if (json.RootElement.TryGetProperty("task_id", out var t)) id = t.GetString();
            if (json.RootElement.TryGetProperty("code", out var c)) code = c.GetString();
        }
        return new Submitted((int)response.StatusCode, (int)response.StatusCode == 202 ? id : null, code, took);
    }

    /// <summary>The job, or null when the server answers 404 for it.</summary>
    public async Task<JobView?> GetJobAsync(string id)
    {
        using var response = await _http.GetAsync($"{Url}/v1/jobs/{id}");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound) return null;
        response.EnsureSuccessStatusCode();
        return JobView.From(await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    /// <summary>
    /// Waits until one job has <paramref name="status"/> (true), or is finished or gone, or the deadline passes (false).
    /// The job is read again at each event of its event stream (its place, stage or step changed), not polled.
    /// </summary>
    public async Task<bool> WaitStatusAsync(string id, string status, TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            using var response = await _http.GetAsync($"{Url}/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            if (!response.IsSuccessStatusCode) return false;
            using var events = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
            // Read once the stream is open, so that no change falls between the read and the next event.
            while (true)
            {
                var job = await GetJobAsync(id);
                if (job?.Status == status) return true;
                if (job is null || job.IsFinished) return false;
                // To the end of the next event (an empty line); the stream ends only with the job.
                string? line;
                while ((line = await events.ReadLineAsync(cancel.Token)) is { Length: > 0 }) { }
                if (line is null) return (await GetJobAsync(id))?.Status == status;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
        {
            // The deadline, or a server killed under the stream.
            return false;
        }
    }

    /// <summary>Every job of every user (the caller must be an admin), paging through GET /v1/jobs?user=*.</summary>
    public async Task<List<JobView>> AllJobsAsync()
    {
        var all = new List<JobView>();
        string? cursor = null;
        do
        {
            var page = await _http.GetFromJsonAsync<JsonElement>($"{Url}/v1/jobs?user=*&limit=100" + (cursor is null ? "" : $"&cursor={cursor}"));
            all.AddRange(page.GetProperty("items").EnumerateArray().Select(JobView.From));
            cursor = page.TryGetProperty("next_cursor", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        }
        while (cursor is not null);
        return all;
    }

    /// <summary>
    /// Returns once every id is finished or the deadline passes. A few ids: each job's event stream, which ends with its
    /// done event, is followed to its end, one job after another (one stream open at a time, far below the per-user
    /// cap on streams). Many, or when a stream cannot be followed: polls, through the admin listing for many (100 a
    /// request, so that polling a backlog of hundreds does not load the server it measures).
    /// </summary>
    public async Task<Dictionary<string, JobView>> WaitFinishedAsync(IReadOnlyCollection<string> ids, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        if (ids.Count <= 20)
        {
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                foreach (var id in ids) await FollowToDoneAsync(id, cancel.Token);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // A server killed or restarted under the stream, or the deadline: the polls below say where things are.
            }
        }
        while (true)
        {
            var jobs = ids.Count <= 20
                ? (await Task.WhenAll(ids.Select(GetJobAsync))).OfType<JobView>().ToDictionary(j => j.Id)
                : (await AllJobsAsync()).ToDictionary(j => j.Id);
            if (ids.All(id => jobs.TryGetValue(id, out var j) && j.IsFinished) || DateTime.UtcNow > deadline) return jobs;
            await Task.Delay(500);
        }
    }

    /// <summary>Reads the job's event stream until its done event, or its end (a job that is gone ends it at once).</summary>
    private async Task FollowToDoneAsync(string id, CancellationToken cancel)
    {
        using var response = await _http.GetAsync($"{Url}/v1/jobs/{id}/events", HttpCompletionOption.ResponseHeadersRead, cancel);
        if (!response.IsSuccessStatusCode) return;
        using var events = new StreamReader(await response.Content.ReadAsStreamAsync(cancel));
        while (await events.ReadLineAsync(cancel) is { } line && line != "event: done") { }
    }

    /// <summary>DELETE /v1/jobs/{id}: cancels a queued or running job; the answer's status.</summary>
    public async Task<int> CancelAsync(string id)
    {
        using var response = await _http.DeleteAsync($"{Url}/v1/jobs/{id}");
        return (int)response.StatusCode;
    }

    public async Task<int> PostAsync(string path)
    {
        using var response = await _http.PostAsync(Url + path, new StringContent("", Encoding.UTF8));
        return (int)response.StatusCode;
    }

    public async Task<byte[]?> ImageAsync(string id, int n)
    {
        using var response = await _http.GetAsync($"{Url}/v1/jobs/{id}/images/{n}");
        return response.IsSuccessStatusCode ? await response.Content.ReadAsByteArrayAsync() : null;
    }

    public void Dispose() => _http.Dispose();
}

internal static class Png
{
    private static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly byte[] End = [0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82];

    /// <summary>Starts with the PNG signature and ends with the IEND chunk: a whole file, not a torn one.</summary>
    public static bool IsWhole(byte[] bytes) =>
        bytes.Length > 40 && bytes.AsSpan(0, 8).SequenceEqual(Signature) && bytes.AsSpan(bytes.Length - 8).SequenceEqual(End);
}
