namespace NewBie.Host.Studio;

public static class StudioSetup
{
    /// <summary>The studio's sign-in page, where its pages send an anonymous browser (Pages/_Imports.razor).</summary>
    public const string LoginPath = "/login";

    public static IHostApplicationBuilder AddStudio(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<History>();
        builder.Services.AddSingleton<StudioService>();
        return builder;
    }

    /// <summary>The studio's own API (the pages themselves are mapped with the admin pages' App, their policy in Pages/_Imports.razor).</summary>
    public static WebApplication MapStudio(this WebApplication app)
    {
        app.MapStudioApi();
        return app;
    }
}
