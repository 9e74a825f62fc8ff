using Hangfire;
using Hangfire.Dashboard;
using NewBie.Host.Accounts;

namespace NewBie.Host.Admin;

public static class AdminSetup
{
    public const string DashboardPath = "/hangfire";

    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<QueueAdmin>();
        builder.Services.AddRazorComponents();
        return builder;
    }

    /// <summary>The admin API and the Hangfire dashboard; after authentication, which both rely on.</summary>
    public static WebApplication MapAdmin(this WebApplication app)
    {
        app.MapQueueAdmin();
        app.Use(GuardAdminPages);
        app.UseAntiforgery();
        // The pages are HTML for people, not API: they stay out of the OpenAPI document.
        app.MapRazorComponents<App>().ExcludeFromDescription();
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

    /// <summary>The admin pages for admins only: anonymous callers are sent to the login page, other users get 403.</summary>
    private static async Task GuardAdminPages(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path;
        if (path.StartsWithSegments("/admin") && path != "/admin/login")
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
