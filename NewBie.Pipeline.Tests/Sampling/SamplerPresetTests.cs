using NewBie.Pipeline.Sampling;

namespace NewBie.Pipeline.Tests.Sampling;

public sealed class SamplerPresetTests
{
    [Fact]
    public void Default_preset_is_the_request_defaults()
    {
        var defaults = new GenerationRequest { Prompt = "" };
        Assert.Equal(defaults, SamplerPresets.Default.Apply(defaults));
        Assert.Same(SamplerPresets.Default, SamplerPresets.Find(null));
        Assert.Same(SamplerPresets.Default, SamplerPresets.Find("default"));
    }

    /// <summary>demo.py at 83a828b: midpoint, 18 grid points (17 intervals), CFG 5, cfg_trunc 0.25, renorm 0.0, shift 6.</summary>
    [Fact]
    public void Demo_preset_is_the_official_demo()
    {
        var demo = SamplerPresets.Find("demo")!;
        var r = demo.Apply(new GenerationRequest { Prompt = "x", Seed = 5 });
        Assert.Equal((SamplerKind.Midpoint, 17, 5.0, 0.25, 0.0, 6.0, "demo"), (r.Sampler, r.Steps, r.Guidance, r.CfgTrunc, r.RenormCfg, r.Shift, r.Preset));
        Assert.Equal(18, Schedules.OfficialTimeGrid(r.Steps + 1, r.Shift).Length);
        Assert.Equal(5, r.Seed);
    }

    [Fact]
    public void Unknown_names_are_not_found()
    {
        Assert.Null(SamplerPresets.Find("Demo"));
        Assert.Null(SamplerPresets.Find("fast"));
        Assert.Equal("default, demo", SamplerPresets.Names);
    }
}
