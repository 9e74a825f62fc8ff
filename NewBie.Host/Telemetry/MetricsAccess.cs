using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using NewBie.Host.Accounts;

namespace NewBie.Host.Telemetry;

public sealed class TelemetryOptions
{
    public const string Section = "Telemetry";

    /// <summary>
    /// A secret a scraper sends as <c>Authorization: Bearer TOKEN</c> to read /metrics without an admin's key
    /// (Prometheus: <c>authorization: {credentials: TOKEN}</c>). Unset: only admins read /metrics.
    /// </summary>
    public string? MetricsToken { get; set; }
}

/// <summary>/metrics names users in its labels and describes the server: admins, or a scraper with Telemetry:MetricsToken.</summary>
public static class MetricsAccess
{
    public const string Policy = "metrics";

    public static void AddMetricsPolicy(this IServiceCollection services)
    {
        services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section)
            .Validate(o => o.MetricsToken is null || o.MetricsToken.Length >= 16, "Telemetry:MetricsToken must be at least 16 characters.")
            .ValidateOnStart();
        services.AddAuthorizationBuilder().AddPolicy(Policy, p => p
            // The API key scheme names the caller whatever the middleware order; a scrape token is no API key and
            // leaves the caller anonymous, so the assertion reads the header itself.
            .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
            .RequireAssertion(context => context.User.IsInRole(Roles.Admin) && context.User.Identity?.IsAuthenticated == true
                || context.Resource is HttpContext http && HasToken(http)));
    }

    private static bool HasToken(HttpContext http)
    {
        var token = http.RequestServices.GetRequiredService<IOptions<TelemetryOptions>>().Value.MetricsToken;
        var header = http.Request.Headers.Authorization.ToString();
        if (token is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        return CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim())), SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }
}
