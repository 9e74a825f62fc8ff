using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Admin;

public sealed class HangfireDashboardTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    [Fact]
    public async Task Dashboard_is_served_to_an_admin_signed_in_with_the_login_cookie_and_its_posts_need_the_antiforgery_token()
    {
        _app.Service<AccountStore>().AddUser("boss", Roles.Admin, "correct horse battery");
        var browser = _app.CreateClient();

        using var login = await browser.PostAsJsonAsync("/v1/auth/login", new { username = "boss", password = "correct horse battery" });
        using var page = await browser.GetAsync("/hangfire");
        var html = await page.Content.ReadAsStringAsync();
        using var forged = await browser.PostAsync("/hangfire/stats", new FormUrlEncodedContent([]));
        // The dashboard's own script sends the antiforgery token its layout carries; a cross-site post cannot.
        var header = Regex.Match(html, "<meta name=\"csrf-header\" content=\"([^\"]+)\"").Groups[1].Value;
        var token = Regex.Match(html, "<meta name=\"csrf-token\" content=\"([^\"]+)\"").Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/hangfire/stats") { Content = new FormUrlEncodedContent([]) };
        request.Headers.Add(header, System.Net.WebUtility.HtmlDecode(token));
        using var stats = await browser.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Hangfire Dashboard", html);
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.Equal(HttpStatusCode.OK, stats.StatusCode);
    }

    [Fact]
    public async Task Dashboard_shows_the_apps_own_storage_to_an_admin_key()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        _app.Engine.Hold();
        await admin.SubmitAsync(new { prompt = "a", width = 256, height = 256, steps = 2 });

        using var servers = await admin.GetAsync("/hangfire/servers");
        var html = await servers.Content.ReadAsStringAsync();
        _app.Engine.Release();

        Assert.Equal(HttpStatusCode.OK, servers.StatusCode);
        // The app's two Hangfire servers, as registered in its LiteDB storage.
        Assert.Contains(":gpu", html);
        Assert.Contains(":default", html);
    }

    [Fact]
    public async Task Dashboard_refuses_anonymous_and_non_admin_callers_even_from_loopback()
    {
        var alice = _app.ClientWithKey("alice");
        var anonymous = _app.CreateClient();

        using var asAlice = await alice.GetAsync("/hangfire");
        using var asNobody = await anonymous.GetAsync("/hangfire");
        using var jobsAsAlice = await alice.GetAsync("/hangfire/jobs/enqueued");

        Assert.Equal(HttpStatusCode.Forbidden, asAlice.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, asNobody.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, jobsAsAlice.StatusCode);
    }
}
