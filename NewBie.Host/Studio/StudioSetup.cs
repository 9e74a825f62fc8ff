namespace NewBie.Host.Studio;

public static class StudioSetup
{
    public static IHostApplicationBuilder AddStudio(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<History>();
        return builder;
    }
}
