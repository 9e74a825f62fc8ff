using System.Net;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.Extensions.Options;
using NewBie.Host.Api;

namespace NewBie.Host.Accounts;

/// <summary>
/// The default scheme: a Bearer API key; else the admin page's cookie; else, while no user exists, the built-in local
/// admin for a loopback caller. A Bearer header that does not hold a valid key fails outright (no fallback), so a
/// revoked key is 401 even on loopback.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AccountStore accounts) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            var key = header["Bearer ".Length..].Trim();
            if (accounts.Authenticate(key) is not { } found) return AuthenticateResult.Fail("Invalid or revoked API key.");
            return Success(found.User.Name, found.User.IsAdmin, found.Key.Id);
        }

        var cookie = await Context.AuthenticateAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        // The cookie names a user: one removed or demoted since it was issued loses what it lost.
        // The stamp ends it at sign-out, a password or role change, or an admin's revoke.
        if (cookie.Succeeded && cookie.Principal.Identity?.Name is { } name && accounts.FindUser(name) is { } cookieUser
            && cookieUser.SecurityStamp is { } stamp && cookie.Principal.FindFirstValue(CurrentUser.SecurityStampClaim) == stamp)
            return Success(cookieUser.Name, cookieUser.IsAdmin, keyId: null, viaCookie: true);

        // The in-process test server has no remote address: it is as local as loopback. A request that came through a
        // reverse proxy on this host also arrives from loopback, so any forwarding header disqualifies it.
        var remote = Context.Connection.RemoteIpAddress;
        if ((remote is null || IPAddress.IsLoopback(remote)) && !CameThroughProxy(Request.Headers) && !accounts.AnyUsers())
            return Success(CurrentUser.LocalAdmin, isAdmin: true, keyId: null);
        return AuthenticateResult.NoResult();
    }

    /// <summary>True when the request carries a Forwarded or any X-Forwarded-* header (RFC 7239 and the de-facto ones).</summary>
    public static bool CameThroughProxy(IHeaderDictionary headers) =>
        headers.ContainsKey("Forwarded") || headers.Keys.Any(k => k.StartsWith("X-Forwarded-", StringComparison.OrdinalIgnoreCase));

    /// <summary>The answer to a caller a policy refuses for want of credentials: 401 problem with a Bearer challenge.</summary>
    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return Problems.Create(StatusCodes.Status401Unauthorized, ProblemCodes.Unauthorized, "Send a valid API key: Authorization: Bearer nb_…")
            .ExecuteAsync(Context);
    }

    /// <summary>The answer to a signed-in caller a policy refuses (e.g. a non-admin on an admin route): 403 problem.</summary>
    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden, "Only admins may use this.").ExecuteAsync(Context);

    private AuthenticateResult Success(string name, bool isAdmin, string? keyId, bool viaCookie = false)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name), new(ClaimTypes.Role, isAdmin ? Roles.Admin : Roles.User) };
        if (keyId is not null) claims.Add(new Claim(CurrentUser.KeyIdClaim, keyId));
        if (viaCookie) claims.Add(new Claim(CurrentUser.SignedInWithClaim, CurrentUser.SignedInWithCookie));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }
}
