using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;
using NewBie.Pipeline;

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
    public void Png_round_trips_through_an_independent_decoder()
    {
        var rgb = ScriptedEngine.Pattern(37, 11, 200);

        var (w, h, decoded) = PngDecoder.Decode(PngEncoder.Encode(37, 11, rgb));

        Assert.Equal((37, 11), (w, h));
        Assert.Equal(rgb, decoded);
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

        store.Write(job, [Image(1)]);
        var written = store.Write(job, [Image(2)]);

        var folder = Path.GetDirectoryName(store.PathOf(written[0]))!;
        Assert.StartsWith(Path.Combine(store.Root, OutputStore.UserFolder("../evil")), folder);
        Assert.Equal(["0.png"], Directory.GetFiles(folder).Select(Path.GetFileName));
        Assert.Equal(ScriptedEngine.Pattern(4, 4, 2), PngDecoder.Decode(File.ReadAllBytes(store.PathOf(written[0]))).Rgb);
    }

    [Fact]
    public void Second_holder_of_a_data_folder_is_refused()
    {
        var error = Assert.Throws<DataDirectoryInUseException>(() => new DataDirectory(Options.Create(new StorageOptions { DataDir = _data.Root })));

        Assert.Contains(_data.Root, error.Message);
    }
}
