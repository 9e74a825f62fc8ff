using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using NewBie.Host.Accounts;
using NewBie.Host.Admin;

namespace NewBie.Host.Tests.Admin;

/// <summary>The server-rendered admin pages, driven as a browser without scripts would: GET, then POST the form with its antiforgery token.</summary>
public sealed partial class AdminPagesTests : IDisposable
{
    private const string Password = "correct horse battery";
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Anonymous_visitor_is_sent_to_the_login_page_and_a_non_admin_cannot_sign_in()
    {
        _app.Service<AccountStore>().AddUser("alice", Roles.User, Password);
        var browser = _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        using var page = await browser.GetAsync("/admin");
        var (status, html) = await PostFormAsync(browser, "/admin/login", "login", new() { ["Form.Username"] = "alice", ["Form.Password"] = Password });
        using var after = await browser.GetAsync("/admin");
        using var withKey = await _app.ClientWithKey("bob").GetAsync("/admin");

        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal("/admin/login", page.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("Only admins may use this page.", html);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, withKey.StatusCode);
    }

    [Fact]
    public async Task Wrong_password_is_refused_on_the_login_page()
    {
        _app.Service<AccountStore>().AddUser("boss", Roles.Admin, Password);
        var browser = _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        var (_, html) = await PostFormAsync(browser, "/admin/login", "login", new() { ["Form.Username"] = "boss", ["Form.Password"] = "wrong password" });
        using var after = await browser.GetAsync("/admin");

        Assert.Contains("Unknown user or wrong password.", html);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
    }

    [Fact]
    public async Task Admin_signs_in_sees_the_queue_in_claim_order_and_cancels_a_waiting_job()
    {
        _app.Service<AccountStore>().AddUser("boss", Roles.Admin, Password);
        _app.Engine.Hold();
        var alice = _app.ClientWithKey("alice");
        var running = (await alice.SubmitAsync(new { prompt = "a", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        var first = (await alice.SubmitAsync(new { prompt = "b", width = 512, height = 256, steps = 3 })).Str("id");
        var second = (await alice.SubmitAsync(new { prompt = "c", width = 256, height = 256, steps = 2 })).Str("id");
        var browser = _app.CreateClient();

        var (signedIn, queueHtml) = await PostFormAsync(browser, "/admin/login", "login", new() { ["Form.Username"] = "boss", ["Form.Password"] = Password });
        var (_, afterCancel) = await PostFormAsync(browser, "/admin", "queue", new() { ["Command"] = $"cancel:{first}" });
        _app.Engine.Release();

        Assert.Equal(HttpStatusCode.OK, signedIn);
        var rows = JobRow().Matches(queueHtml).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(new[] { running, first, second }, rows);
        Assert.Contains("512×256", queueHtml);
        Assert.Contains("alice", queueHtml);
        Assert.Equal(new[] { running, second }, JobRow().Matches(afterCancel).Select(m => m.Groups[1].Value));
        Assert.Contains($"Job {first}: Canceled.", afterCancel);
        Assert.Equal("canceled", (await alice.GetJobAsync(first)).Str("status"));
    }

    [Fact]
    public async Task Queue_page_pauses_and_resumes_the_worker_and_moves_a_job_to_the_front()
    {
        _app.Engine.Hold();
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var running = (await admin.SubmitAsync(new { prompt = "a", width = 256, height = 256, steps = 2 })).Str("id");
        await admin.WaitForStatusAsync(running, "running");
        await admin.SubmitAsync(new { prompt = "b", width = 256, height = 256, steps = 2 });
        var last = (await admin.SubmitAsync(new { prompt = "c", width = 256, height = 256, steps = 2 })).Str("id");

        var (_, paused) = await PostFormAsync(admin, "/admin", "queue", new() { ["Command"] = "pause" });
        var pausedNow = _app.Service<QueueAdmin>().IsPaused;
        var (_, moved) = await PostFormAsync(admin, "/admin", "queue", new() { ["Command"] = $"front:{last}" });
        var (_, resumed) = await PostFormAsync(admin, "/admin", "queue", new() { ["Command"] = "resume" });
        _app.Engine.Release();

        Assert.True(pausedNow);
        Assert.Contains("""<b id="worker-state" class="paused">paused</b>""", paused);
        Assert.Equal(last, JobRow().Matches(moved).Select(m => m.Groups[1].Value).ElementAt(1));
        Assert.Contains("""<b id="worker-state" class="">running</b>""", resumed);
        Assert.False(_app.Service<QueueAdmin>().IsPaused);
    }

    [Fact]
    public async Task Users_page_creates_a_user_sets_limits_creates_a_key_shown_once_and_revokes_it()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        var (_, created) = await PostFormAsync(admin, "/admin/users", "users", new()
        {
            ["Form.Command"] = "save", ["Form.Name"] = "carol", ["Form.Role"] = "user", ["Form.Password"] = "",
            ["Form.PriorityClass"] = "low", ["Form.MaxQueuedJobs"] = "3", ["Form.ImagesPerDay"] = "",
        });
        var (_, changed) = await PostFormAsync(admin, "/admin/users", "users", new() { ["Form.Command"] = "save", ["Form.Name"] = "carol", ["Form.ImagesPerDay"] = "9" });
        var (_, badNumber) = await PostFormAsync(admin, "/admin/users", "users", new() { ["Form.Command"] = "save", ["Form.Name"] = "carol", ["Form.ImagesPerDay"] = "many" });
        var (_, keyPage) = await PostFormAsync(admin, "/admin/users", "users", new() { ["Form.Command"] = "key:carol", ["Form.KeyName"] = "laptop" });
        var key = NewKey().Match(keyPage).Groups[1].Value;
        using var withKey = await _app.ClientWithBearer(key).GetAsync("/v1/jobs");
        var shownAgain = await admin.GetStringAsync("/admin/users");
        var keyId = Assert.Single(_app.Service<AccountStore>().Keys("carol")).Id;
        var (_, revoked) = await PostFormAsync(admin, "/admin/users", "users", new() { ["Form.Command"] = $"revoke:carol:{keyId}" });
        using var afterRevoke = await _app.ClientWithBearer(key).GetAsync("/v1/jobs");

        Assert.Contains("User carol created.", created);
        var carol = _app.Service<AccountStore>().FindUser("carol")!;
        Assert.Equal(("user", "low", 3, 9), (carol.Role, carol.PriorityClass, carol.MaxQueuedJobs, carol.ImagesPerDay));
        Assert.Contains("User carol changed.", changed);
        Assert.Contains("images/day must be a whole number.", badNumber);
        Assert.StartsWith("nb_", key);
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
        Assert.DoesNotContain(key, shownAgain);
        Assert.Contains($"laptop ({keyId})", shownAgain);
        Assert.Contains($"Key {keyId} of carol revoked.", revoked);
        Assert.DoesNotContain($"id=\"key-{keyId}\"", revoked);
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
    }

    private static async Task<(HttpStatusCode Status, string Html)> PostFormAsync(HttpClient browser, string path, string form, Dictionary<string, string> fields)
    {
        var page = await browser.GetStringAsync(path);
        var token = Token().Match(page);
        Assert.True(token.Success, $"no antiforgery token on {path}: {page}");
        fields["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value);
        fields["_handler"] = form;
        using var response = await browser.PostAsync(path, new FormUrlEncodedContent(fields));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex Token();

    [GeneratedRegex("<code id=\"new-key\">([^<]+)</code>")]
    private static partial Regex NewKey();

    [GeneratedRegex("<tr id=\"job-([0-9a-f]+)\"")]
    private static partial Regex JobRow();
}
