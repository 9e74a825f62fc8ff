namespace NewBie.Host.Storage;

public static class StorageSetup
{
    public static IHostApplicationBuilder AddStorage(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<StorageOptions>().BindConfiguration(StorageOptions.Section)
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataDir), "Storage:DataDir is required.")
            .Validate(o => o.MinFreeBytes >= 0, "Storage:MinFreeBytes must be 0 or more.").ValidateOnStart();
        builder.Services.AddSingleton<DataDirectory>();
        builder.Services.AddSingleton<AppDatabase>();
        builder.Services.AddSingleton<IFreeSpaceProbe, DriveFreeSpaceProbe>();
        builder.Services.AddSingleton<StorageSpace>();
        builder.Services.AddSingleton(TimeProvider.System);
        return builder;
    }
}
