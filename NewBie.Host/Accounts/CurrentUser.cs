using System.Security.Claims;
using NewBie.Host.Api;
using NewBie.Host.Jobs;

namespace NewBie.Host.Accounts;

/// <summary>
/// Who is calling, from the authenticated principal (API key, admin cookie, or the loopback local admin).
/// Bound into handlers; <see cref="Require"/> guards a route group so that handlers never see an anonymous caller.
/// </summary>
public sealed record CurrentUser(string Id, bool IsAdmin, string? KeyId)
{
    /// <summary>The built-in admin of a fresh install, for loopback callers while no user exists.</summary>
    public const string LocalAdmin = "local";

    public const string KeyIdClaim = "newbie:key";

    /// <summary>How the caller signed in, when it was with the sign-in cookie (browsers send it on their own: CSRF checks apply).</summary>
    public const string SignedInWithClaim = "newbie:signed-in-with", SignedInWithCookie = "cookie";

    /// <summary>The user's security stamp when the sign-in cookie was issued.</summary>
    public const string SecurityStampClaim = "newbie:stamp";

    /// <summary>Jobs and images: the owner's, and every one for an admin. Anyone else gets 404, as if it did not exist.</summary>
    public bool CanSee(JobRecord job) => IsAdmin || job.UserId == Id;

    public static CurrentUser? From(ClaimsPrincipal principal) =>
        principal.Identity is { IsAuthenticated: true, Name: { } name }
            ? new CurrentUser(name, principal.IsInRole(Roles.Admin), principal.FindFirstValue(KeyIdClaim))
            : null;

    /// <summary>Never null inside a group guarded by <see cref="Require"/>.</summary>
    public static ValueTask<CurrentUser?> BindAsync(HttpContext context) =>
        ValueTask.FromResult<CurrentUser?>(From(context.User) ?? new CurrentUser("", false, null));

    /// <summary>An endpoint filter: 401 problem with a Bearer challenge for a caller with no valid credentials.</summary>
    public static async ValueTask<object?> Require(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        From(context.HttpContext.User) is null ? Unauthorized(context.HttpContext) : await next(context);

    /// <summary>An endpoint filter: 401 for anonymous callers, 403 forbidden for callers who are not admins.</summary>
    public static async ValueTask<object?> RequireAdmin(EndpointFilterInvocationContext context, EndpointFilterDelegate next) =>
        From(context.HttpContext.User) switch
        {
            null => Unauthorized(context.HttpContext),
            { IsAdmin: false } => Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden, "Only admins may use this."),
            _ => await next(context),
        };

    internal static IResult Unauthorized(HttpContext context)
    {
        context.Response.Headers.WWWAuthenticate = "Bearer";
        return Problems.Create(StatusCodes.Status401Unauthorized, ProblemCodes.Unauthorized,
            "Send a valid API key: Authorization: Bearer nb_…");
    }
}
