using NewBie.Host.Accounts;

namespace NewBie.Host.Studio;

public static class StudioSetup
{
    /// <summary>The studio's pages: everyone who is signed in (the loopback local admin of a fresh install too).</summary>
    public static readonly string[] PagePaths = ["/", "/gallery", "/usage"];

    public static IHostApplicationBuilder AddStudio(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<History>();
        builder.Services.AddSingleton<StudioService>();
        return builder;
    }

    /// <summary>The studio's own API and the guard of its pages (the pages themselves are mapped with the admin pages' App).</summary>
    public static WebApplication MapStudio(this WebApplication app)
    {
        app.MapStudioApi();
        app.Use(GuardStudioPages);
        return app;
    }

    /// <summary>Anonymous visitors of a studio page are sent to its sign-in page.</summary>
    private static Task GuardStudioPages(HttpContext context, RequestDelegate next)
    {
        if (PagePaths.Contains(context.Request.Path.Value) && CurrentUser.From(context.User) is null)
        {
            context.Response.Redirect("/login");
            return Task.CompletedTask;
        }
        return next(context);
    }
}
