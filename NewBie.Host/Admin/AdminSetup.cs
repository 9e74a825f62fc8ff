using Hangfire;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting.StaticWebAssets;
using NewBie.Host.Accounts;

namespace NewBie.Host.Admin;

public static class AdminSetup
{
    public const string DashboardPath = "/hangfire";

    public const string LoginPath = "/admin/login";

    /// <summary>Where interactive server components keep their SignalR connection (the framework's fixed path).</summary>
    public const string CircuitHubPath = "/_blazor";

    /// <summary>
    /// The policy of the pages' circuit hub (and its negotiate, disconnect and initializer endpoints): every signed-in
    /// user, since the studio's pages use it too. A circuit outlives the page request whose policy let it open, so the
    /// admin components check the circuit's user themselves as well (<see cref="LivePage"/>).
    /// </summary>
    public const string CircuitPolicy = Policies.User;

    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<QueueAdmin>();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        return builder;
    }

    /// <summary>
    /// blazor.web.js, the one static file: a static web asset of the framework. A build run outside Development
    /// (dotnet run, the built NewBie.dll) finds it through the build's manifest beside the binary, as Development does
    /// by itself; a published binary has no manifest (this is then a no-op) and serves it from wwwroot/ beside itself.
    /// Plain middleware, not MapStaticAssets, whose development fallback is a catch-all GET route.
    /// </summary>
    public static WebApplication UseAdminAssets(this WebApplication app)
    {
        if (!app.Environment.IsDevelopment()) StaticWebAssetsLoader.UseStaticWebAssets(app.Environment, app.Configuration);
        app.UseStaticFiles();
        return app;
    }

    /// <summary>The admin queue API, the pages (admin and studio) with their circuit hub, and the Hangfire dashboard.</summary>
    public static WebApplication MapAdmin(this WebApplication app)
    {
        app.MapQueueAdmin();
        // Pages carry their own policy and sign-in page (the _Imports.razor of their folder; [AllowAnonymous] on the
        // sign-in pages). The endpoints of the circuit get CircuitPolicy; the framework's opaque-redirect endpoint (the
        // target of an enhanced form's redirect) carries no data and stays public.
        // The pages are HTML for people, not API: they stay out of the OpenAPI document.
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode().ExcludeFromDescription().Add(endpoint =>
        {
            if (endpoint is RouteEndpointBuilder { RoutePattern.RawText: { } route } && route.TrimStart('/').StartsWith(CircuitHubPath.TrimStart('/'), StringComparison.Ordinal))
                endpoint.Metadata.Add(new AuthorizeAttribute(CircuitPolicy));
        });
        MapDashboard(app).RequireAuthorization(Policies.Admin).ExcludeFromDescription();
        return app;
    }

    /// <summary>
    /// The dashboard middleware itself, on the app's own storage, as an endpoint (so that a policy guards it):
    /// MapHangfireDashboard would demand AddHangfire, which configures Hangfire's static GlobalConfiguration (shared by
    /// every server in the process).
    /// </summary>
    private static IEndpointConventionBuilder MapDashboard(IEndpointRouteBuilder app)
    {
        var options = new DashboardOptions
        {
            // The endpoint's policy decides who gets in; Hangfire's own default (local requests only) must not add to it.
            Authorization = [],
            AppPath = "/admin",
            DisplayStorageConnectionString = false,
        };
        var storage = app.ServiceProvider.GetRequiredService<Hangfire.JobStorage>();
        var dashboard = app.CreateApplicationBuilder()
            .UsePathBase(DashboardPath)
            .UseMiddleware<AspNetCoreDashboardMiddleware>(storage, options, DashboardRoutes.Routes)
            .Build();
        return app.Map(DashboardPath + "/{**path}", dashboard);
    }
}
