using Microsoft.AspNetCore.Antiforgery;
using Microsoft.Extensions.Options;
using NewBie.Host.Api;

namespace NewBie.Host.Accounts;

/// <summary>
/// Cross-site request forgery: a browser attaches the sign-in cookie to any request a page sends, even from another
/// site or another port of this host (same-site, so SameSite=Strict does not stop it). A state-changing request
/// (anything but GET, HEAD, OPTIONS, TRACE) authenticated by that cookie must come from this origin (its Origin header,
/// or Sec-Fetch-Site: same-origin) or carry a valid antiforgery token (the pages' forms). API keys and the local admin
/// are not sent by browsers on their own, so their requests are not checked.
/// </summary>
public static class SameOriginWrites
{
    /// <summary>After authentication: the check needs to know how the caller signed in.</summary>
    public static WebApplication UseSameOriginWrites(this WebApplication app)
    {
        var server = app.Services.GetRequiredService<IOptions<ServerOptions>>();
        app.Use(async (http, next) =>
        {
            // Signing out needs no protection: at worst a forged request signs someone out.
            if (IsWrite(http.Request.Method) && http.Request.Path != "/v1/auth/logout" && http.User.HasClaim(CurrentUser.SignedInWithClaim, CurrentUser.SignedInWithCookie)
                && !FromThisOrigin(http.Request, server.Value.PublicBaseUrl)
                && !await http.RequestServices.GetRequiredService<IAntiforgery>().IsRequestValidAsync(http))
            {
                await Problems.Create(StatusCodes.Status403Forbidden, ProblemCodes.Forbidden,
                    "A request signed in with the cookie must come from this site's own pages (Origin) or carry an antiforgery token; scripts use an API key.")
                    .ExecuteAsync(http);
                return;
            }
            await next(http);
        });
        return app;
    }

    private static bool IsWrite(string method) =>
        !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method));

    private static bool FromThisOrigin(HttpRequest request, string? publicBaseUrl)
    {
        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0) return request.Headers["Sec-Fetch-Site"].ToString() == "same-origin";
        if (string.Equals(origin, $"{request.Scheme}://{request.Host.Value}", StringComparison.OrdinalIgnoreCase)) return true;
        return publicBaseUrl is { Length: > 0 } && Uri.TryCreate(publicBaseUrl, UriKind.Absolute, out var root)
            && string.Equals(origin, root.GetLeftPart(UriPartial.Authority), StringComparison.OrdinalIgnoreCase);
    }
}
