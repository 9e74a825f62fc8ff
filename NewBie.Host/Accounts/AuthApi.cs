using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using NewBie.Host.Api;

namespace NewBie.Host.Accounts;

/// <summary>POST /v1/auth/login and /v1/auth/logout: the cookie the admin page uses. Login is rate limited per client IP.</summary>
public static class AuthApi
{
    public sealed record LoginRequest(string? Username, string? Password);

    public static RouteGroupBuilder MapAuth(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/auth").WithTags("Accounts");
        group.MapPost("/login", Login).WithSummary("Sign in with a user name and password (sets the session cookie)")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status429TooManyRequests);
        group.MapPost("/logout", (Delegate)Logout).WithSummary("Sign out (clears the session cookie)").Produces(StatusCodes.Status204NoContent);
        return group;
    }

    private static async Task<IResult> Login(LoginRequest body, HttpContext context, AccountStore accounts, Limits limits)
    {
        var ip = context.Connection.RemoteIpAddress?.ToString() ?? "local";
        if (limits.TryAnonymous(ip) is { } wait) return RateLimited.Result(wait, "Too many login attempts from this address.");
        if (body.Username is not { } name || body.Password is not { } password || accounts.CheckPassword(name, password) is not { } user)
            return Problems.Create(StatusCodes.Status401Unauthorized, ProblemCodes.Unauthorized, "Unknown user or wrong password.");
        await context.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, accounts.SessionPrincipal(user));
        return TypedResults.Ok(new { user = user.Name, role = user.Role });
    }

    private static async Task<IResult> Logout(HttpContext context, AccountStore accounts)
    {
        // Signing out ends the session on the server too (every browser of the user): a copied cookie is refused.
        if (context.User.HasClaim(CurrentUser.SignedInWithClaim, CurrentUser.SignedInWithCookie) && context.User.Identity?.Name is { } name)
            accounts.EndSessions(name);
        await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        return TypedResults.NoContent();
    }
}

/// <summary>429 with Retry-After (whole seconds, at least 1) and a problem code.</summary>
public static class RateLimited
{
    public static IResult Result(TimeSpan wait, string detail, string code = ProblemCodes.RateLimited) =>
        new RetryAfterResult(wait, code, Problems.Create(StatusCodes.Status429TooManyRequests, code, detail));

    public static int Seconds(TimeSpan wait) => Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));

    private sealed class RetryAfterResult(TimeSpan wait, string code, IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            // Every 429 of the server passes here, so the refusal metric counts them all, by problem code.
            httpContext.RequestServices.GetService<NewBie.Host.Telemetry.NewBieMetrics>()?.RateLimited(code);
            httpContext.Response.Headers.RetryAfter = Seconds(wait).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return inner.ExecuteAsync(httpContext);
        }
    }
}
