using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Accounts;

namespace NewBie.Host.Tests.Accounts;

/// <summary>
/// Every route declares who may call it, as a policy on its group, page or endpoint; the few public ones are listed
/// here by name, so a route added without a policy fails this test until someone decides.
/// </summary>
public sealed class AuthorizationPolicyTests : IClassFixture<AuthorizationPolicyTests.App>
{
    private readonly App _app;

    public AuthorizationPolicyTests(App app) => _app = app;

    public sealed class App : IDisposable
    {
        public NewBieApplication Server { get; } = new();

        /// <summary>Every routed endpoint: its pattern and the policies it requires (empty: public).</summary>
        public IReadOnlyList<(string Route, IReadOnlyList<string?> Policies, bool Anonymous)> Endpoints() =>
            Server.Services.GetServices<EndpointDataSource>().SelectMany(s => s.Endpoints).OfType<RouteEndpoint>()
                .Select(e => ("/" + e.RoutePattern.RawText!.Trim('/'),
                    (IReadOnlyList<string?>)e.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).ToList(),
                    e.Metadata.GetMetadata<IAllowAnonymous>() is not null))
                .ToList();

        public void Dispose() => Server.Dispose();
    }

    /// <summary>The routes anyone may call: health, metrics, the API description, signing in and out (API, admin, studio).</summary>
    private static readonly string[] Public =
    [
        "/healthz", "/readyz", "/metrics", "/openapi/{documentName}.json", "/scalar/{documentName?}", "/scalar/scalar.js", "/scalar/scalar.aspnetcore.js", "/scalar/favicon.svg", "/v1/auth/login", "/v1/auth/logout",
        "/admin/login", "/login", "/logout", "/_framework/opaque-redirect",
    ];

    [Fact]
    public void Every_route_requires_a_policy_unless_it_is_listed_public()
    {
        var endpoints = _app.Endpoints();
        var undeclared = endpoints.Where(e => (e.Policies.Count == 0 || e.Anonymous) && !Public.Contains(e.Route)).Select(e => e.Route).ToList();

        Assert.Contains(endpoints, e => e.Route == "/v1/jobs");
        Assert.True(undeclared.Count == 0, "no policy: " + string.Join(", ", undeclared));
    }

    [Fact]
    public void Admin_api_pages_and_dashboard_require_the_admin_policy_and_the_rest_the_user_policy()
    {
        foreach (var (route, policies, anonymous) in _app.Endpoints().Where(e => !Public.Contains(e.Route)))
        {
            var admin = route.StartsWith("/v1/admin/", StringComparison.Ordinal) || route == "/admin" || route.StartsWith("/admin/", StringComparison.Ordinal)
                || route.StartsWith("/hangfire", StringComparison.Ordinal);
            Assert.False(anonymous, route);
            Assert.True(policies.Distinct().SequenceEqual([admin ? Policies.Admin : Policies.User]), $"{route}: {string.Join(", ", policies)}");
        }
        Assert.Contains(_app.Endpoints(), e => e.Route.StartsWith("/_blazor", StringComparison.Ordinal) && e.Policies.SequenceEqual([Policies.User]));
        Assert.Contains(_app.Endpoints(), e => e.Route == "/gallery" && e.Policies.SequenceEqual([Policies.User]));
    }

    [Fact]
    public async Task Refusals_are_problems_401_with_a_bearer_challenge_and_403_for_a_non_admin()
    {
        var anonymous = _app.Server.CreateClient();
        var user = _app.Server.ClientWithKey("policy-user");

        using var noKey = await anonymous.GetAsync("/v1/jobs");
        using var badKey = await _app.Server.ClientWithBearer("nb_nothing_real").GetAsync("/v1/jobs");
        using var notAdmin = await user.GetAsync("/v1/admin/users");
        using var allowed = await user.GetAsync("/v1/jobs");

        foreach (var refused in new[] { noKey, badKey })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.Equal("Bearer", refused.Headers.WwwAuthenticate.ToString());
            Assert.Equal("unauthorized", (await refused.ProblemAsync()).Str("code"));
        }
        Assert.Equal(HttpStatusCode.Forbidden, notAdmin.StatusCode);
        Assert.Equal("forbidden", (await notAdmin.ProblemAsync()).Str("code"));
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }
}
