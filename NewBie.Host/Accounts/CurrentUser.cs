using System.Security.Claims;
using NewBie.Host.Jobs;

namespace NewBie.Host.Accounts;

/// <summary>
/// Who is calling, from the authenticated principal (API key, admin cookie, or the loopback local admin).
/// Bound into handlers; the route groups' policies (<see cref="Policies"/>) keep anonymous callers out before binding.
/// </summary>
public sealed record CurrentUser(string Id, bool IsAdmin, string? KeyId)
{
    /// <summary>The built-in admin of a fresh install, for loopback callers while no user exists.</summary>
    public const string LocalAdmin = "local";

    public const string KeyIdClaim = "newbie:key";

    /// <summary>Jobs and images: the owner's, and every one for an admin. Anyone else gets 404, as if it did not exist.</summary>
    public bool CanSee(JobRecord job) => IsAdmin || job.UserId == Id;

    public static CurrentUser? From(ClaimsPrincipal principal) =>
        principal.Identity is { IsAuthenticated: true, Name: { } name }
            ? new CurrentUser(name, principal.IsInRole(Roles.Admin), principal.FindFirstValue(KeyIdClaim))
            : null;

    /// <summary>Never null on a route that requires a policy (every policy requires an authenticated caller).</summary>
    public static ValueTask<CurrentUser?> BindAsync(HttpContext context) =>
        ValueTask.FromResult<CurrentUser?>(From(context.User) ?? new CurrentUser("", false, null));
}
