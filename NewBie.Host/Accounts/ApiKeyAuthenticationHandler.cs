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
        if (cookie.Succeeded && cookie.Principal.Identity?.Name is { } name && accounts.FindUser(name) is { } cookieUser)
            return Success(cookieUser.Name, cookieUser.IsAdmin, keyId: null);

        // The in-process test server has no remote address: it is as local as loopback.
        var remote = Context.Connection.RemoteIpAddress;
        if ((remote is null || IPAddress.IsLoopback(remote)) && !accounts.AnyUsers())
            return Success(CurrentUser.LocalAdmin, isAdmin: true, keyId: null);
        return AuthenticateResult.NoResult();
    }

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

    private AuthenticateResult Success(string name, bool isAdmin, string? keyId)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name), new(ClaimTypes.Role, isAdmin ? Roles.Admin : Roles.User) };
        if (keyId is not null) claims.Add(new Claim(CurrentUser.KeyIdClaim, keyId));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }
}
