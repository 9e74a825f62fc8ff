using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc.Testing;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Admin;

/// <summary>
/// The admin pages over plain HTTP: the static sign-in form (posted with its antiforgery token), who may load the
/// pages and open their circuit, and what the prerendered pages show. Clicking through them is AdminBrowserTests.
/// </summary>
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
        var (status, html) = await PostLoginAsync(browser, "alice", Password);
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

        var (_, html) = await PostLoginAsync(browser, "boss", "wrong password");
        using var after = await browser.GetAsync("/admin");

        Assert.Contains("Unknown user or wrong password.", html);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
    }

    [Fact]
    public async Task Login_form_without_its_antiforgery_token_is_refused()
    {
        _app.Service<AccountStore>().AddUser("boss", Roles.Admin, Password);
        var browser = _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

        using var response = await browser.PostAsync("/admin/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "login", ["Form.Username"] = "boss", ["Form.Password"] = Password,
        }));
        using var after = await browser.GetAsync("/admin");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
    }

    [Fact]
    public async Task Admin_signs_in_with_the_form_and_gets_the_queue_page_in_claim_order_with_its_circuit_script()
    {
        _app.Service<AccountStore>().AddUser("boss", Roles.Admin, Password);
        _app.Engine.Hold();
        var alice = _app.ClientWithKey("alice");
        var running = (await alice.SubmitAsync(new { prompt = "a", width = 256, height = 256, steps = 2 })).Str("id");
        await alice.WaitForStatusAsync(running, "running");
        var first = (await alice.SubmitAsync(new { prompt = "b", width = 512, height = 256, steps = 3 })).Str("id");
        var second = (await alice.SubmitAsync(new { prompt = "c", width = 256, height = 256, steps = 2 })).Str("id");
        var browser = _app.CreateClient();

        var (signedIn, html) = await PostLoginAsync(browser, "boss", Password);
        _app.Engine.Release();

        Assert.Equal(HttpStatusCode.OK, signedIn);
        Assert.Equal(new[] { running, first, second }, JobRow().Matches(html).Select(m => m.Groups[1].Value));
        Assert.Contains("512×256", html);
        Assert.Contains("alice", html);
        Assert.Contains("""<script src="_framework/blazor.web.js"></script>""", html);
        // The prerendered page carries the marker from which the script opens the interactive circuit.
        Assert.Contains("<!--Blazor:{\"type\":\"server\"", html);
        Assert.DoesNotContain("http-equiv=\"refresh\"", html);
    }

    [Fact]
    public async Task Framework_script_of_the_interactive_pages_is_served_to_anyone()
    {
        using var response = await _app.CreateClient().GetAsync("/_framework/blazor.web.js");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("Blazor", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Circuit_hub_opens_only_for_signed_in_users_the_studios_pages_use_it_too()
    {
        var anonymous = _app.CreateClient();
        var user = _app.ClientWithKey("alice");
        var admin = _app.ClientWithKey("boss", Roles.Admin);

        using var asAnonymous = await Negotiate(anonymous);
        using var asUser = await Negotiate(user);
        using var asAdmin = await Negotiate(admin);
        using var disconnectAsAnonymous = await anonymous.PostAsync("/_blazor/disconnect", null);

        Assert.Equal(HttpStatusCode.Unauthorized, asAnonymous.StatusCode);
        Assert.Equal(HttpStatusCode.OK, asUser.StatusCode);
        Assert.Equal(HttpStatusCode.OK, asAdmin.StatusCode);
        Assert.Contains("connectionToken", await asAdmin.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, disconnectAsAnonymous.StatusCode);
    }

    [Fact]
    public async Task Interactive_pages_take_no_form_posts()
    {
        var admin = _app.ClientWithKey("boss", Roles.Admin);
        var page = await admin.GetStringAsync("/admin");

        using var posted = await admin.PostAsync("/admin", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = "", ["_handler"] = "queue", ["Command"] = "pause",
        }));

        Assert.DoesNotContain("<form", page);
        Assert.NotEqual(HttpStatusCode.OK, posted.StatusCode);
        Assert.False(_app.Service<NewBie.Host.Admin.QueueAdmin>().IsPaused);
    }

    private static Task<HttpResponseMessage> Negotiate(HttpClient client) => client.PostAsync("/_blazor/negotiate?negotiateVersion=1", null);

    private static async Task<(HttpStatusCode Status, string Html)> PostLoginAsync(HttpClient browser, string user, string password)
    {
        var page = await browser.GetStringAsync("/admin/login");
        var token = Token().Match(page);
        Assert.True(token.Success, $"no antiforgery token on the login page: {page}");
        using var response = await browser.PostAsync("/admin/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token.Groups[1].Value),
            ["_handler"] = "login", ["Form.Username"] = user, ["Form.Password"] = password,
        }));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex Token();

    [GeneratedRegex("<tr id=\"job-([0-9a-f]+)\"")]
    private static partial Regex JobRow();
}
