using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace NewBie.Host.Accounts;

/// <summary>
/// How a refused request is answered. By default the authentication scheme answers (the API's 401/403 problems, see
/// <see cref="ApiKeyAuthenticationHandler"/>); endpoints marked <see cref="SignInRedirect"/> or
/// <see cref="ForbidWithoutChallenge"/> answer as their metadata says.
/// </summary>
public sealed class AuthorizationResponses : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (!authorizeResult.Succeeded)
        {
            var metadata = context.GetEndpoint()?.Metadata;
            if (authorizeResult.Challenged && metadata?.GetMetadata<SignInRedirect>() is { } signIn)
            {
                context.Response.Redirect(signIn.Path);
                return Task.CompletedTask;
            }
            if (metadata?.GetMetadata<ForbidWithoutChallenge>() is not null)
            {
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                return Task.CompletedTask;
            }
        }
        return _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
