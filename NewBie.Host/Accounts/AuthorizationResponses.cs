using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace NewBie.Host.Accounts;

/// <summary>
/// How a refused request is answered. By default the authentication scheme answers (the API's 401/403 problems, see
/// <see cref="ApiKeyAuthenticationHandler"/>); a page marked <see cref="SignInPageAttribute"/> sends an anonymous
/// browser to its sign-in page instead.
/// </summary>
public sealed class AuthorizationResponses : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Challenged && context.GetEndpoint()?.Metadata.GetMetadata<SignInPageAttribute>() is { } signIn)
        {
            context.Response.Redirect(signIn.Path);
            return Task.CompletedTask;
        }
        return _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
