using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;

namespace NewBie.Host.Tests.Outputs;

public sealed class OutputStoreTests : IDisposable
{
    private readonly DataDirectory _data = new(Options.Create(new StorageOptions { DataDir = Directory.CreateTempSubdirectory("newbie-out-").FullName }));

    public void Dispose()
    {
        _data.Dispose();
        Directory.Delete(_data.Root, recursive: true);
    }

    [Fact]
    public void Written_png_round_trips_through_an_independent_decoder_and_carries_the_parameters()
    {
        var rgb = ScriptedEngine.Pattern(37, 11, 200);
        var request = new GenerationRequest { Prompt = "1girl, 笑顔", NegativePrompt = "blurry", Seed = 200, Steps = 3, Width = 37, Height = 11 };
        var written = new OutputStore(_data).Write(new JobRecord { Id = "job2", UserId = "u" }, request, "newbie-tiny", [new GeneratedImage(0, 37, 11, 200, rgb)]);

        var bytes = File.ReadAllBytes(new OutputStore(_data).PathOf(written[0]));
        var (w, h, decoded) = PngDecoder.Decode(bytes);

        Assert.Equal((37, 11), (w, h));
        Assert.Equal(rgb, decoded);
        var png = PngReader.Read(bytes);
        Assert.Equal("1girl, 笑顔", png.TextOf("prompt"));
        Assert.Equal("newbie-tiny", png.TextOf("model"));
        Assert.Contains("Seed: 200", png.TextOf("parameters"));
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("a/b\\c")]
    [InlineData("local")]
    public void User_folder_is_a_hash_never_the_user_text(string userId)
    {
        var folder = OutputStore.UserFolder(userId);

        Assert.Matches("^u[0-9a-f]{24}$", folder);
        Assert.NotEqual(OutputStore.UserFolder(userId + "x"), folder);
    }

    [Fact]
    public void Rewriting_a_job_replaces_its_files_and_leaves_no_temp_files()
    {
        var store = new OutputStore(_data);
        var job = new JobRecord { Id = "job1", UserId = "../evil" };
        GeneratedImage Image(long seed) => new(0, 4, 4, seed, ScriptedEngine.Pattern(4, 4, seed));

        var request = new GenerationRequest { Prompt = "p", Width = 4, Height = 4 };
        store.Write(job, request, "m", [Image(1)]);
        var written = store.Write(job, request, "m", [Image(2)]);

        var folder = Path.GetDirectoryName(store.PathOf(written[0]))!;
        Assert.StartsWith(Path.Combine(store.Root, OutputStore.UserFolder("../evil")), folder);
        Assert.Equal(["0.png"], Directory.GetFiles(folder).Select(Path.GetFileName));
        Assert.Equal(ScriptedEngine.Pattern(4, 4, 2), PngDecoder.Decode(File.ReadAllBytes(store.PathOf(written[0]))).Rgb);
    }

    [Fact]
    public void A_rerun_removes_the_temp_file_an_attempt_killed_mid_write_left_behind()
    {
        var store = new OutputStore(_data);
        var job = new JobRecord { Id = "job3", UserId = "u" };
        var request = new GenerationRequest { Prompt = "p", Width = 4, Height = 4 };
        var folder = Path.Combine(store.Root, OutputStore.UserFolder("u"), "job3");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "0.png.0123456789abcdef0123456789abcdef.tmp"), [1, 2, 3]);

        store.Write(job, request, "m", [new GeneratedImage(0, 4, 4, 1, ScriptedEngine.Pattern(4, 4, 1))]);

        Assert.Equal(["0.png"], Directory.GetFiles(folder).Select(Path.GetFileName));
    }

    [Fact]
    public void Second_holder_of_a_data_folder_is_refused()
    {
        var error = Assert.Throws<DataDirectoryInUseException>(() => new DataDirectory(Options.Create(new StorageOptions { DataDir = _data.Root })));

        Assert.Contains(_data.Root, error.Message);
    }
}
