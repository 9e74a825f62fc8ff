using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Integrations;

namespace NewBie.Host.Tests.Integrations;

public sealed class WebhookSignatureTests
{
    [Fact]
    public void Signature_reproduces_the_published_standard_webhooks_test_vector()
    {
        var signature = WebhookSigner.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, "{\"test\": 2432232314}"u8);

        Assert.Equal("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", signature);
    }

    [Fact]
    public void New_secret_is_whsec_with_32_random_bytes()
    {
        var a = WebhookSigner.NewSecret();
        var b = WebhookSigner.NewSecret();

        Assert.StartsWith("whsec_", a);
        Assert.Equal(32, Convert.FromBase64String(a["whsec_".Length..]).Length);
        Assert.NotEqual(a, b);
    }

    private const string VerifyScript = """
        const { Webhook } = require('standardwebhooks');
        const e = process.env;
        new Webhook(e.SECRET).verify(e.BODY, { 'webhook-id': e.ID, 'webhook-timestamp': e.TS, 'webhook-signature': e.SIG });
        console.log('verified');
        """;

    [NodeFact]
    public async Task Signature_is_accepted_by_the_standardwebhooks_npm_verifier_and_a_changed_body_is_not()
    {
        var secret = WebhookSigner.NewSecret();
        var body = """{"type":"job.succeeded","data":{"id":"abc","prompt":"ミク, smile"}}""";
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var env = new Dictionary<string, string>
        {
            ["SECRET"] = secret, ["BODY"] = body, ["ID"] = "msg_abc", ["TS"] = timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["SIG"] = WebhookSigner.Sign(secret, "msg_abc", timestamp, Encoding.UTF8.GetBytes(body)),
        };

        var (exit, output) = await NodeScripts.RunAsync(VerifyScript, env);
        Assert.True(exit == 0, output);
        Assert.Contains("verified", output);

        env["BODY"] = body.Replace("smile", "frown");
        var (tamperedExit, tamperedOutput) = await NodeScripts.RunAsync(VerifyScript, env);
        Assert.NotEqual(0, tamperedExit);
        Assert.Contains("No matching signature found", tamperedOutput);
    }
}

public sealed class WebhookTargetGuardTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("169.254.169.254")]
    [InlineData("172.16.5.4")]
    [InlineData("192.168.0.10")]
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("::1")]
    [InlineData("[::1]")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("fd00::1")]
    [InlineData("fe80::1")]
    [InlineData("localhost")]
    public async Task Private_loopback_and_link_local_targets_are_refused_after_resolution(string host)
    {
        var guard = new WebhookTargetGuard(allowPrivateTargets: false);

        await Assert.ThrowsAsync<WebhookTargetRefusedException>(() => guard.ResolveAsync(host, CancellationToken.None));
    }

    [Fact]
    public async Task Private_targets_resolve_when_the_admin_allows_them()
    {
        var guard = new WebhookTargetGuard(allowPrivateTargets: true);

        var addresses = await guard.ResolveAsync("localhost", CancellationToken.None);

        Assert.All(addresses, a => Assert.True(IPAddress.IsLoopback(a)));
    }

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("93.184.216.34")]
    [InlineData("2606:4700:4700::1111")]
    public void Public_addresses_are_allowed(string address) => Assert.True(WebhookTargetGuard.IsPublic(IPAddress.Parse(address)));
}

public sealed class WebhookDeliveryTests : IDisposable
{
    private readonly List<NewBieApplication> _apps = [];

    public void Dispose()
    {
        foreach (var app in _apps) app.Dispose();
    }

    private HttpClient Client(bool allowPrivate)
    {
        var app = new NewBieApplication(new()
        {
            ["Webhooks:AllowPrivateTargets"] = allowPrivate ? "true" : "false",
            ["Webhooks:FirstRetryDelay"] = "00:00:00.050",
            ["Webhooks:MaxAttempts"] = "3",
        });
        _apps.Add(app);
        return app.ClientFor();
    }

    private static async Task<string> SecretAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/v1/webhook-secret", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).Str("secret");
    }

    private static Task<JsonElement> WaitForWebhookAsync(HttpClient client, string id, string state) =>
        client.WaitForJobAsync(id, job => job.GetProperty("webhook").Str("state") == state, $"with its webhook {state}");

    [Fact]
    public async Task Webhook_is_retried_after_a_500_and_every_attempt_is_signed_with_the_users_secret()
    {
        using var receiver = new WebhookReceiver(500);
        var client = Client(allowPrivate: true);
        var secret = await SecretAsync(client);

        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 2, webhook_url = receiver.Url })).Str("id");
        var job = await WaitForWebhookAsync(client, id, "delivered");

        var webhook = job.GetProperty("webhook");
        Assert.Equal(receiver.Url, webhook.Str("url"));
        Assert.Equal(2, webhook.GetProperty("attempts").GetInt32());
        Assert.Equal(200, webhook.GetProperty("last_status").GetInt32());
        var requests = receiver.Requests.ToList();
        Assert.Equal(2, requests.Count);
        foreach (var (headers, body) in requests)
        {
            Assert.Equal($"msg_{id}", headers["webhook-id"]);
            var expected = WebhookSigner.Sign(secret, headers["webhook-id"], long.Parse(headers["webhook-timestamp"], System.Globalization.CultureInfo.InvariantCulture), body);
            Assert.Equal(expected, headers["webhook-signature"]);
            var payload = JsonSerializer.Deserialize<JsonElement>(body);
            Assert.Equal("job.succeeded", payload.Str("type"));
            Assert.Equal(id, payload.GetProperty("data").Str("id"));
            Assert.Equal("succeeded", payload.GetProperty("data").Str("status"));
        }
    }

    [Fact]
    public async Task Webhook_gives_up_as_failed_after_max_attempts()
    {
        using var receiver = new WebhookReceiver(500, 502, 503, 500);
        var client = Client(allowPrivate: true);
        await SecretAsync(client);

        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 1, webhook_url = receiver.Url })).Str("id");
        var job = await WaitForWebhookAsync(client, id, "failed");

        Assert.Equal(3, job.GetProperty("webhook").GetProperty("attempts").GetInt32());
        Assert.Equal(503, job.GetProperty("webhook").GetProperty("last_status").GetInt32());
        Assert.Equal(3, receiver.Requests.Count);
    }

    [Fact]
    public async Task Webhook_to_loopback_is_refused_unless_private_targets_are_allowed()
    {
        using var receiver = new WebhookReceiver();
        var client = Client(allowPrivate: false);
        await SecretAsync(client);

        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 1, webhook_url = receiver.Url })).Str("id");
        var job = await WaitForWebhookAsync(client, id, "refused");

        Assert.Contains("127.0.0.1", job.GetProperty("webhook").Str("last_error"));
        Assert.Empty(receiver.Requests);
    }

    [Fact]
    public async Task Canceled_queued_job_sends_a_job_canceled_event()
    {
        using var receiver = new WebhookReceiver();
        var app = new NewBieApplication(new() { ["Webhooks:AllowPrivateTargets"] = "true" });
        _apps.Add(app);
        var client = app.ClientFor();
        await SecretAsync(client);
        app.Engine.Hold();
        var blocker = (await client.SubmitAsync(new { prompt = "first", width = 256, height = 256, steps = 2 })).Str("id");
        await client.WaitForStatusAsync(blocker, "running");

        var id = (await client.SubmitAsync(new { prompt = "second", width = 256, height = 256, steps = 2, webhook_url = receiver.Url })).Str("id");
        using var cancel = await client.DeleteAsync($"/v1/jobs/{id}");
        await receiver.WaitForAsync(1);

        Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
        var payload = JsonSerializer.Deserialize<JsonElement>(receiver.Requests.Single().Body);
        Assert.Equal("job.canceled", payload.Str("type"));
        Assert.Equal(id, payload.GetProperty("data").Str("id"));
        app.Engine.Release();
    }

    [Fact]
    public async Task Failed_job_sends_a_job_failed_event_with_its_error()
    {
        using var receiver = new WebhookReceiver();
        var app = new NewBieApplication(new() { ["Webhooks:AllowPrivateTargets"] = "true" });
        _apps.Add(app);
        var client = app.ClientFor();
        await SecretAsync(client);
        app.Engine.Failure = new InvalidOperationException("boom");

        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 1, webhook_url = receiver.Url })).Str("id");
        await receiver.WaitForAsync(1);

        var payload = JsonSerializer.Deserialize<JsonElement>(receiver.Requests.Single().Body);
        Assert.Equal("job.failed", payload.Str("type"));
        Assert.Equal("boom", payload.GetProperty("data").GetProperty("error").Str("message"));
        await WaitForWebhookAsync(client, id, "delivered");
    }

    [Fact]
    public async Task Expired_job_sends_a_job_expired_event()
    {
        using var receiver = new WebhookReceiver();
        var app = new NewBieApplication(new() { ["Webhooks:AllowPrivateTargets"] = "true" });
        _apps.Add(app);
        var client = app.ClientFor();
        await SecretAsync(client);
        app.Engine.Hold();
        var blocker = (await client.SubmitAsync(new { prompt = "first", width = 256, height = 256, steps = 2 })).Str("id");
        await client.WaitForStatusAsync(blocker, "running");
        var id = (await client.SubmitAsync(new { prompt = "second", width = 256, height = 256, steps = 2, webhook_url = receiver.Url })).Str("id");

        app.Time.Advance(TimeSpan.FromDays(2));
        // The maintenance the clock's advance set off may expire the job first; either way it expires once.
        app.Service<NewBie.Host.Jobs.JobMaintenance>().ExpireStale();
        await client.WaitForStatusAsync(id, "expired");
        await receiver.WaitForAsync(1);

        var payload = JsonSerializer.Deserialize<JsonElement>(receiver.Requests.Single().Body);
        Assert.Equal("job.expired", payload.Str("type"));
        Assert.Equal(id, payload.GetProperty("data").Str("id"));
        app.Engine.Release();
    }

    [Fact]
    public async Task Start_up_queues_the_delivery_of_a_finished_job_whose_webhook_has_no_hangfire_job()
    {
        using var receiver = new WebhookReceiver();
        var app = new NewBieApplication(new() { ["Webhooks:AllowPrivateTargets"] = "true" });
        _apps.Add(app);
        var client = app.ClientFor();
        await SecretAsync(client);
        var jobs = app.Service<NewBie.Host.Jobs.JobStore>();
        // As a crash between finishing the job and queueing its delivery leaves it.
        jobs.Insert(new NewBie.Host.Jobs.JobRecord
        {
            Id = "orphan0000000000000", UserId = "local", Status = NewBie.Host.Jobs.JobStatus.Succeeded, FinishedAt = app.Time.GetUtcNow().UtcDateTime,
            Webhook = new NewBie.Host.Jobs.JobWebhook { Url = receiver.Url, State = NewBie.Host.Jobs.WebhookState.Pending },
        }, maxQueued: 1000);
        var dispatcher = app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<WebhookDispatcher>().Single();

        await dispatcher.StopAsync(CancellationToken.None);
        await dispatcher.StartAsync(CancellationToken.None);
        await receiver.WaitForAsync(1);

        Assert.Equal("msg_orphan0000000000000", receiver.Requests.Single().Headers["webhook-id"]);
        Assert.NotNull(jobs.Find("orphan0000000000000")!.Webhook!.DeliveryJobId);
    }

    [Theory]
    [InlineData("ftp://example.com/hook")]
    [InlineData("/relative/hook")]
    [InlineData("http://user:pw@example.com/hook")]
    public async Task Submit_refuses_a_webhook_url_that_is_not_absolute_http(string url)
    {
        var client = Client(allowPrivate: false);
        await SecretAsync(client);

        using var response = await client.PostRawAsync("/v1/jobs", new { prompt = "1girl", webhook_url = url });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.ProblemAsync();
        Assert.Equal("invalid_parameter", problem.Str("code"));
        Assert.Equal("webhook_url", problem.Str("field"));
    }

    [Fact]
    public async Task Submit_with_a_webhook_needs_a_secret_first_and_rotation_replaces_it()
    {
        var client = Client(allowPrivate: false);
        using var before = await client.PostRawAsync("/v1/jobs", new { prompt = "1girl", webhook_url = "https://example.com/hook" });
        Assert.Equal(HttpStatusCode.BadRequest, before.StatusCode);
        Assert.Contains("/v1/webhook-secret", (await before.ProblemAsync()).Str("detail"));

        var first = await SecretAsync(client);
        var second = await SecretAsync(client);

        Assert.NotEqual(first, second);
        Assert.Equal(second, _apps[0].Service<IWebhookSecretStore>().Find("local"));
    }
}
