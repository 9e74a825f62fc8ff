using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.Options;
using NewBie.Host.Api;
using NewBie.Host.Jobs;

namespace NewBie.Host.Integrations;

/// <summary>The event a finished job's webhook receives: its type ("job.succeeded", …) and the job JSON.</summary>
public sealed record WebhookEvent(string Type, DateTime Timestamp, JobDto Data);

/// <summary>
/// Sends a finished job's webhook, run by Hangfire on the "default" queue. Attempts back off exponentially
/// (FirstRetryDelay, doubling) inside the one Hangfire job; each attempt, its status and the final state are saved on
/// the job record, so a re-run after a restart continues the count instead of starting over.
/// </summary>
public sealed class WebhookDelivery(
    JobStore jobs,
    IWebhookSecretStore secrets,
    WebhookClient client,
    IOptions<WebhooksOptions> options,
    IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json,
    TimeProvider time,
    ILogger<WebhookDelivery> logger)
{
    public async Task DeliverAsync(string jobId, CancellationToken cancellationToken)
    {
        var job = jobs.Find(jobId);
        if (job?.Webhook is not { State: WebhookState.Pending or WebhookState.Delivering } webhook) return;
        if (secrets.Find(job.UserId) is not { } secret)
        {
            Save(jobId, WebhookState.Failed, null, "The user has no webhook secret.", countAttempt: false);
            return;
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(
            new WebhookEvent($"job.{JobMapping.StatusName(job.Status)}", job.FinishedAt ?? time.GetUtcNow().UtcDateTime, job.ToDto(new QueuePlace(null, 0))),
            json.Value.SerializerOptions);
        // Stable across attempts, as the spec asks, so that receivers can drop duplicates.
        var messageId = $"msg_{job.Id}";
        var o = options.Value;

        for (var attempt = webhook.Attempts + 1; attempt <= o.MaxAttempts; attempt++)
        {
            if (attempt > 1)
            {
                // Real time, not the app clock: the wait is for the receiver to recover.
                await Task.Delay(o.FirstRetryDelay * Math.Pow(2, attempt - 2), cancellationToken);
            }
            var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
            using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            request.Headers.Add(WebhookSigner.IdHeader, messageId);
            request.Headers.Add(WebhookSigner.TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add(WebhookSigner.SignatureHeader, WebhookSigner.Sign(secret, messageId, timestamp, body));
            try
            {
                using var response = await client.SendAsync(request, cancellationToken);
                var status = (int)response.StatusCode;
                if (response.IsSuccessStatusCode)
                {
                    Save(jobId, WebhookState.Delivered, status, null);
                    return;
                }
                Save(jobId, WebhookState.Delivering, status, $"The receiver answered {status}.");
            }
            catch (Exception e) when (Refusal(e) is { } refused)
            {
                logger.LogWarning("Webhook of job {JobId} refused: {Reason}", jobId, refused.Message);
                Save(jobId, WebhookState.Refused, null, refused.Message);
                return;
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                Save(jobId, WebhookState.Delivering, null, e is OperationCanceledException ? $"No answer within {o.Timeout}." : e.Message);
            }
        }
        logger.LogWarning("Webhook of job {JobId} failed after {Attempts} attempts", jobId, o.MaxAttempts);
        Save(jobId, WebhookState.Failed, null, null, countAttempt: false);
    }

    private static WebhookTargetRefusedException? Refusal(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
            if (inner is WebhookTargetRefusedException refused) return refused;
        return null;
    }

    private void Save(string jobId, WebhookState state, int? status, string? error, bool countAttempt = true) => jobs.Update(jobId, j =>
    {
        if (j.Webhook is not { } w) return false;
        w.State = state;
        if (countAttempt)
        {
            w.Attempts++;
            w.LastStatus = status;
            w.LastError = error;
        }
        return true;
    });
}

/// <summary>The HTTP client of webhooks: connections only to checked addresses, no proxy, no redirects.</summary>
public sealed class WebhookClient : IDisposable
{
    private readonly HttpClient _http;

    public WebhookClient(IOptions<WebhooksOptions> options)
    {
        var guard = new WebhookTargetGuard(options.Value.AllowPrivateTargets);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            ConnectCallback = guard.ConnectAsync,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
        };
        _http = new HttpClient(handler) { Timeout = options.Value.Timeout };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("NewBie-Webhooks/1");
    }

    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        _http.SendAsync(request, cancellationToken);

    public void Dispose() => _http.Dispose();
}
