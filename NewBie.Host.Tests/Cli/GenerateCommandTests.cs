using NewBie.Host.Cli;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Cli;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-generate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string[] Args(params string[] extra) =>
        ["--model", "tiny", "--data-dir", Path.Combine(_dir, "data"), "--models-dir", Path.Combine(_dir, "models"), .. extra];

    [Fact]
    public void Generate_writes_a_png_with_its_parameters_from_the_tiny_model()
    {
        var output = Path.Combine(_dir, "out", "a.png");

        var code = GenerateCommand.Run(Args("--prompt", "1girl, smile", "--out", output, "--width", "256", "--height", "256", "--steps", "2", "--seed", "9", "--sampler", "midpoint"));

        Assert.Equal(0, code);
        var png = PngReader.Read(File.ReadAllBytes(output));
        Assert.Equal((256, 256), (png.Width, png.Height));
        Assert.Equal("9", png.TextOf("seed"));
        Assert.Equal("Midpoint", png.TextOf("sampler"));
        Assert.Equal("newbie-tiny", png.TextOf("model"));
        Assert.False(File.Exists(output + ".tmp"));
    }

    [Fact]
    public void Preset_and_sampler_options_reach_the_png()
    {
        var output = Path.Combine(_dir, "demo.png");

        var code = GenerateCommand.Run(Args("--prompt", "x", "--out", output, "--width", "256", "--height", "256", "--preset", "demo", "--steps", "1", "--shift", "3", "--seed", "2"));

        Assert.Equal(0, code);
        var png = PngReader.Read(File.ReadAllBytes(output));
        Assert.Equal(("demo", "Midpoint", "1", "0.25", "0", "3"),
            (png.TextOf("preset"), png.TextOf("sampler"), png.TextOf("steps"), png.TextOf("cfg_trunc"), png.TextOf("renorm"), png.TextOf("shift")));
    }

    [Fact]
    public void A_count_writes_numbered_files()
    {
        var output = Path.Combine(_dir, "b.png");
        Assert.Equal(0, GenerateCommand.Run(Args("--prompt", "x", "--out", output, "--width", "256", "--height", "256", "--steps", "1", "--count", "2", "--seed", "4")));
        Assert.Equal("5", PngReader.Read(File.ReadAllBytes(Path.Combine(_dir, "b-1.png"))).TextOf("seed"));
        Assert.True(File.Exists(Path.Combine(_dir, "b-0.png")));
    }

    [Theory]
    [InlineData("--prompt", "x")]
    [InlineData("--prompt", "x", "--out", "o.png", "--sampler", "dpm")]
    [InlineData("--prompt", "x", "--out", "o.png", "--width", "100")]
    [InlineData("--prompt", "x", "--out", "o.png", "--steps", "many")]
    [InlineData("--prompt", "x", "--out", "o.png", "--preset", "fast")]
    [InlineData("--prompt", "x", "--out", "o.png", "--cfg-trunc", "2")]
    [InlineData("--prompt", "x", "--out", "o.png", "--shift", "0")]
    [InlineData("--prompt")]
    public void Bad_arguments_exit_with_2_and_write_nothing(params string[] args)
    {
        Assert.Equal(2, GenerateCommand.Run(Args(args)));
        Assert.False(File.Exists(Path.Combine(_dir, "o.png")));
    }

    [Fact]
    public void The_real_model_without_weights_exits_with_1()
    {
        var args = new[] { "--model", "newbie-exp0.1", "--models-dir", Path.Combine(_dir, "none"), "--prompt", "x", "--out", Path.Combine(_dir, "c.png") };
        Assert.Equal(1, GenerateCommand.Run(args));
    }
}
