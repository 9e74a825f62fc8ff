using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;

namespace NewBie.Host.Accounts;

public static class AccountsSetup
{
    public static IHostApplicationBuilder AddAccounts(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<AccountsOptions>().BindConfiguration(AccountsOptions.Section)
            .Validate(o => o.RateLimits.KeyRefillPeriod > TimeSpan.Zero, "Accounts:RateLimits:KeyRefillPeriod must be positive.")
            .Validate(o => System.ComponentModel.DataAnnotations.Validator.TryValidateObject(o.Defaults, new(o.Defaults), null, validateAllProperties: true)
                && System.ComponentModel.DataAnnotations.Validator.TryValidateObject(o.RateLimits, new(o.RateLimits), null, validateAllProperties: true),
                "Accounts:Defaults or Accounts:RateLimits holds a value out of range.")
            .ValidateOnStart();
        services.AddSingleton<AccountStore>();
        services.AddSingleton<Limits>();
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null)
            .AddCookie(CookieAuthenticationDefaults.AuthenticationScheme, o =>
            {
                o.Cookie.Name = "newbie.auth";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.ExpireTimeSpan = TimeSpan.FromHours(12);
                o.SlidingExpiration = true;
                // An API answers 401/403; it does not redirect to a login page.
                o.Events.OnRedirectToLogin = c => { c.Response.StatusCode = StatusCodes.Status401Unauthorized; return Task.CompletedTask; };
                o.Events.OnRedirectToAccessDenied = c => { c.Response.StatusCode = StatusCodes.Status403Forbidden; return Task.CompletedTask; };
            });
        services.AddAuthorizationBuilder().AddNewBiePolicies();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, AuthorizationResponses>();
        return builder;
    }

    /// <summary>Sign-in and sign-out, and the admin API of users, keys and usage.</summary>
    public static WebApplication MapAccounts(this WebApplication app)
    {
        app.MapAuth();
        app.MapAccountsAdmin();
        return app;
    }
}
