using Hangfire;
using Hangfire.Dashboard;
using Microsoft.AspNetCore.Hosting.StaticWebAssets;
using NewBie.Host.Accounts;

namespace NewBie.Host.Admin;

public static class AdminSetup
{
    public const string DashboardPath = "/hangfire";

    /// <summary>Where interactive server components keep their SignalR connection (the framework's fixed path).</summary>
    public const string CircuitHubPath = "/_blazor";

    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<QueueAdmin>();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        return builder;
    }

    /// <summary>The admin API and the Hangfire dashboard; after authentication, which both rely on.</summary>
    public static WebApplication MapAdmin(this WebApplication app)
    {
        app.MapQueueAdmin();
        app.Use(GuardAdminPages);
        // Only the static sign-in form posts; the interactive pages act over the circuit.
        app.UseAntiforgery();
        // blazor.web.js, the one static file: a static web asset of the framework. A build run outside Development
        // (dotnet run, the built NewBie.dll) finds it through the build's manifest beside the binary, as Development
        // does by itself; a published binary has no manifest (this is then a no-op) and serves it from wwwroot/
        // beside itself. Plain middleware, not MapStaticAssets, whose development fallback is a catch-all GET route.
        if (!app.Environment.IsDevelopment()) StaticWebAssetsLoader.UseStaticWebAssets(app.Environment, app.Configuration);
        app.UseStaticFiles();
        // The pages are HTML for people, not API: they stay out of the OpenAPI document.
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode().ExcludeFromDescription();
        // The dashboard middleware itself, on the app's own storage: UseHangfireDashboard would demand AddHangfire,
        // which configures Hangfire's static GlobalConfiguration (shared by every server in the process).
        var options = new DashboardOptions
        {
            Authorization = [new AdminDashboardAuthorization()],
            AppPath = "/admin",
            DisplayStorageConnectionString = false,
        };
        var storage = app.Services.GetRequiredService<Hangfire.JobStorage>();
        app.Map(DashboardPath, dashboard => dashboard.UseMiddleware<AspNetCoreDashboardMiddleware>(storage, options, DashboardRoutes.Routes));
        return app;
    }

    /// <summary>
    /// The admin pages for admins only: anonymous callers are sent to the login page, other users get 403. The
    /// pages' circuit hub for signed-in users only (the studio's pages use it too): a circuit outlives the page
    /// request, so the admin components check the circuit's user themselves as well (<see cref="LivePage"/>).
    /// </summary>
    private static async Task GuardAdminPages(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path;
        if (path.StartsWithSegments(CircuitHubPath))
        {
            if (CurrentUser.From(context.User) is null)
            {
                context.Response.StatusCode = StatusCodes.Status401Unauthorized;
                return;
            }
        }
        else if (path.StartsWithSegments("/admin") && path != "/admin/login")
        {
            switch (CurrentUser.From(context.User))
            {
                case null:
                    context.Response.Redirect("/admin/login");
                    return;
                case { IsAdmin: false }:
                    context.Response.StatusCode = StatusCodes.Status403Forbidden;
                    return;
            }
        }
        await next(context);
    }
}
