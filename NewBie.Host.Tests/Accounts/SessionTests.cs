using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

/// <summary>Sign-in cookies: copied ones end with the session, and cross-site writes cannot ride on them.</summary>
public sealed class SessionTests : IDisposable
{
    private readonly NewBieApplication _app = new();

    public void Dispose() => _app.Dispose();

    /// <summary>Signs in and returns the cookie as a browser (or a thief) would send it back.</summary>
    private async Task<string> SignInAsync(string user, string role = Roles.User, string password = "correct horse battery")
    {
        var accounts = _app.Service<AccountStore>();
        if (accounts.FindUser(user) is null) accounts.AddUser(user, role, password);
        using var response = await Plain().PostAsJsonAsync("/v1/auth/login", new { username = user, password });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("newbie.auth=", StringComparison.Ordinal)).Split(';')[0];
    }

    private HttpClient Plain() => _app.CreateClient(new WebApplicationFactoryClientOptions { HandleCookies = false });

    private async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, string cookie, string? origin = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Cookie", cookie);
        if (origin is not null) request.Headers.Add("Origin", origin);
        using var response = await Plain().SendAsync(request);
        return response.StatusCode;
    }

    [Fact]
    public async Task Copied_cookie_is_refused_after_logout()
    {
        var cookie = await SignInAsync("alice");
        var copy = cookie;
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, "/v1/jobs", copy));

        Assert.Equal(HttpStatusCode.NoContent, await SendAsync(HttpMethod.Post, "/v1/auth/logout", cookie));

        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", copy));
    }

    [Fact]
    public async Task Cookie_is_refused_after_a_password_change()
    {
        var cookie = await SignInAsync("alice");
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        using var changed = await admin.PatchAsJsonAsync("/v1/admin/users/alice", new { password = "another long passphrase" });

        Assert.Equal(HttpStatusCode.OK, changed.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", cookie));
        // The new password opens a new session.
        var fresh = await SignInAsync("alice", password: "another long passphrase");
        Assert.Equal(HttpStatusCode.OK, await SendAsync(HttpMethod.Get, "/v1/jobs", fresh));
    }

    [Fact]
    public async Task Cookie_is_refused_after_a_role_change_and_after_the_user_is_removed_and_made_again()
    {
        var demoted = await SignInAsync("carol", Roles.Admin);
        var removed = await SignInAsync("dave");
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        using var demote = await admin.PatchAsJsonAsync("/v1/admin/users/carol", new { role = "user" });
        using var remove = await admin.DeleteAsync("/v1/admin/users/dave");
        _app.Service<AccountStore>().AddUser("dave", Roles.User, "correct horse battery");

        Assert.Equal(HttpStatusCode.OK, demote.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, remove.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", demoted));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", removed));
    }

    [Fact]
    public async Task Admin_ends_every_session_of_a_user_and_keeps_their_keys()
    {
        var first = await SignInAsync("alice");
        var second = await SignInAsync("alice");
        var key = _app.ClientWithKey("alice");
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        using var revoked = await admin.DeleteAsync("/v1/admin/users/alice/sessions");
        using var unknown = await admin.DeleteAsync("/v1/admin/users/nobody/sessions");
        using var byKey = await key.GetAsync("/v1/jobs");

        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", first));
        Assert.Equal(HttpStatusCode.Unauthorized, await SendAsync(HttpMethod.Get, "/v1/jobs", second));
        Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
    }

    [Fact]
    public async Task Cookie_write_from_another_origin_or_without_one_is_refused_and_an_api_key_write_is_not()
    {
        var cookie = await SignInAsync("boss", Roles.Admin);

        var noOrigin = await SendAsync(HttpMethod.Post, "/v1/admin/queue/pause", cookie);
        // Another port of the same host: same-site for the cookie, another origin for the browser.
        var otherPort = await SendAsync(HttpMethod.Post, "/v1/admin/queue/pause", cookie, origin: "http://localhost:8081");
        var pausedByForgery = _app.Service<NewBie.Host.Admin.QueueAdmin>().IsPaused;
        var sameOrigin = await SendAsync(HttpMethod.Post, "/v1/admin/queue/pause", cookie, origin: "http://localhost");
        using var byKey = await _app.ClientWithKey("ops", Roles.Admin).PostAsync("/v1/admin/queue/resume", null);

        Assert.Equal(HttpStatusCode.Forbidden, noOrigin);
        Assert.Equal(HttpStatusCode.Forbidden, otherPort);
        Assert.False(pausedByForgery);
        Assert.Equal(HttpStatusCode.OK, sameOrigin);
        Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        Assert.False(_app.Service<NewBie.Host.Admin.QueueAdmin>().IsPaused);
    }
}
