using Microsoft.AspNetCore.Authorization;

namespace NewBie.Host.Accounts;

/// <summary>
/// The authorization policies, by name: route groups say <c>.RequireAuthorization(Policies.User)</c>, Razor pages
/// <c>@attribute [Authorize(Policy = Policies.Admin)]</c> (per folder, in its _Imports.razor). A feature with its own rule adds a policy next to these
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
/// On a page (a Razor component with @page): where a browser the page's policy refuses for want of credentials is sent
/// to sign in, instead of getting the API's 401 problem. Set per folder in its _Imports.razor.
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class SignInPageAttribute(string path) : Attribute
{
    public string Path { get; } = path;
}
