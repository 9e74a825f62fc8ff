using NewBie.Host.Studio;

namespace NewBie.Host.Tests.Storage;

/// <summary>What every <see cref="IStudioSettingsStore"/> does (see <see cref="StoreContract{TStore}"/> for how to run it on another one).</summary>
public abstract class StudioSettingsStoreContract(Func<IStudioSettingsStore> factory, IDisposable? resources)
    : StoreContract<IStudioSettingsStore>(factory, resources)
{
    [SkippableFact]
    public void Saved_settings_read_back_whole_for_their_user_only()
    {
        var saved = new StudioSettings
        {
            UserId = "alice", Width = 832, Height = 1216, Steps = 17, Guidance = 4.5, Sampler = "midpoint", Preset = "demo", CfgTrunc = 0.25,
            Renorm = 0, Shift = 6, Seed = 1234567890123, Count = 2, NegativePrompt = "", Prompt = "  <character_1><n>miku</n></character_1>  ",
        };
        Store.Save(saved);

        Assert.Equivalent(saved, Another().Find("alice"), strict: true);
        Assert.Null(Store.Find("bob"));
    }

    [SkippableFact]
    public void Saving_again_replaces_the_users_settings()
    {
        Store.Save(new StudioSettings { UserId = "alice", Steps = 10, Seed = 5 });
        Another().Save(new StudioSettings { UserId = "alice", Steps = 20, Seed = null });

        var found = Store.Find("alice")!;
        Assert.Equal(20, found.Steps);
        Assert.Null(found.Seed);
    }
}
