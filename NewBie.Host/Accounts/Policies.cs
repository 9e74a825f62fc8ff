using Microsoft.AspNetCore.Authorization;

namespace NewBie.Host.Accounts;

/// <summary>
/// The authorization policies, by name: route groups say <c>.RequireAuthorization(Policies.User)</c>, Razor pages
/// <c>@attribute [Authorize(Policy = Policies.Admin)]</c>. A feature with its own rule adds a policy next to these
/// (<c>builder.Services.AddAuthorizationBuilder().AddPolicy(…)</c> in its own Add… method).
/// </summary>
public static class Policies
{
    /// <summary>Any signed-in caller: an API key, the sign-in cookie, or the loopback local admin of a fresh install.</summary>
    public const string User = "user";

    /// <summary>Callers with the admin role.</summary>
    public const string Admin = "admin";

    public static AuthorizationBuilder AddNewBiePolicies(this AuthorizationBuilder authorization) => authorization
        .AddPolicy(User, p => p.RequireAuthenticatedUser())
        .AddPolicy(Admin, p => p.RequireAuthenticatedUser().RequireRole(Roles.Admin));
}

/// <summary>
/// Endpoint metadata for pages people open in a browser: an anonymous caller the policy refuses is sent to the sign-in
/// page instead of getting the API's 401 problem.
/// </summary>
public sealed record SignInRedirect(string Path);

/// <summary>
/// Endpoint metadata: a caller the policy refuses gets 403 even when anonymous, with no challenge (the circuit hub,
/// which a browser reaches only from a page it already had to be allowed to load).
/// </summary>
public sealed record ForbidWithoutChallenge;
