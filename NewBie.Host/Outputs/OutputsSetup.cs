namespace NewBie.Host.Outputs;

public static class OutputsSetup
{
    public static IHostApplicationBuilder AddOutputs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<OutputStore>();
        return builder;
    }
}
