using Hangfire;
using Hangfire.Dashboard;

namespace NewBie.Host.Admin;

public static class AdminSetup
{
    public const string DashboardPath = "/hangfire";

    public static IHostApplicationBuilder AddAdmin(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<QueueAdmin>();
        return builder;
    }

    /// <summary>The admin API and the Hangfire dashboard; after authentication, which both rely on.</summary>
    public static WebApplication MapAdmin(this WebApplication app)
    {
        app.MapQueueAdmin();
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
}
