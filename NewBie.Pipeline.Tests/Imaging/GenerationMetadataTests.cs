using NewBie.Pipeline.Imaging;

namespace NewBie.Pipeline.Tests.Imaging;

public sealed class GenerationMetadataTests
{
    private static readonly GenerationRequest Request = new()
    {
        Prompt = "1girl, cherry blossoms",
        NegativePrompt = "lowres",
        Steps = 28,
        Guidance = 5,
        Seed = 42,
    };

    private static readonly GeneratedImage Image = new(Index: 0, Width: 1024, Height: 1024, Seed: 42, Rgb: []);

    [Fact]
    public void Parameters_follow_the_A1111_convention()
    {
        Assert.Equal(
            "1girl, cherry blossoms\nNegative prompt: lowres\nSteps: 28, Sampler: Euler, CFG scale: 5, Seed: 42, Size: 1024x1024, Model: NewBie-image-Exp0.1, " +
            "CFG truncation: 1, CFG renorm: 1, Shift: 6, Preset: default",
            GenerationMetadata.Parameters(Request, Image, "NewBie-image-Exp0.1"));
    }

    [Fact]
    public void Parameters_leave_out_an_empty_negative_prompt_and_keep_fractional_guidance()
    {
        var request = Request with { NegativePrompt = "", Guidance = 4.5, Sampler = SamplerKind.Midpoint, CfgTrunc = 0.25, RenormCfg = 0, Shift = 3.5, Preset = "demo" };
        var image = Image with { Width = 832, Height = 1216, Seed = 43 };
        Assert.Equal("1girl, cherry blossoms\nSteps: 28, Sampler: Midpoint, CFG scale: 4.5, Seed: 43, Size: 832x1216, Model: m, " +
            "CFG truncation: 0.25, CFG renorm: 0, Shift: 3.5, Preset: demo",
            GenerationMetadata.Parameters(request, image, "m"));
    }

    [Fact]
    public void Individual_keys_carry_the_image_values_and_the_software()
    {
        var image = Image with { Index = 1, Seed = 43 };
        var text = GenerationMetadata.For(Request, image, "NewBie-image-Exp0.1", "NewBie Server 0.1.0").ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("43", text["seed"]);
        Assert.Equal("1girl, cherry blossoms", text["prompt"]);
        Assert.Equal("lowres", text["negative_prompt"]);
        Assert.Equal("28", text["steps"]);
        Assert.Equal("5", text["guidance"]);
        Assert.Equal("1024", text["width"]);
        Assert.Equal("1024", text["height"]);
        Assert.Equal("Euler", text["sampler"]);
        Assert.Equal("1", text["cfg_trunc"]);
        Assert.Equal("1", text["renorm"]);
        Assert.Equal("6", text["shift"]);
        Assert.Equal("default", text["preset"]);
        Assert.Equal("NewBie-image-Exp0.1", text["model"]);
        Assert.Equal("NewBie Server 0.1.0", text["Software"]);
        Assert.Contains("Seed: 43", text["parameters"]);
    }

    [Fact]
    public void A_CJK_prompt_survives_the_png_round_trip_in_every_chunk_that_holds_it()
    {
        var request = Request with { Prompt = "<n>初音ミク</n>, 桜" };
        var image = new GeneratedImage(Index: 0, Width: 3, Height: 2, Seed: 42, Rgb: [.. Enumerable.Range(0, 18).Select(i => (byte)(i * 14))]);
        var png = PngWriter.Encode(image, GenerationMetadata.For(request, image, "NewBie-image-Exp0.1"));
        var read = PngReader.Read(png);
        Assert.Equal(image.Rgb, read.Rgb);
        Assert.Equal("3", read.TextOf("width"));
        Assert.Equal(request.Prompt, read.TextOf("prompt"));
        Assert.StartsWith(request.Prompt + "\nNegative prompt: lowres\n", read.TextOf("parameters"));
        Assert.Equal("iTXt", read.Text.Single(t => t.Keyword == "parameters").Type);
        Assert.Equal("tEXt", read.Text.Single(t => t.Keyword == "seed").Type);
        Assert.Equal(GenerationMetadata.DefaultSoftware, read.TextOf("Software"));
    }
}
