namespace NewBie.Pipeline.Tests.EndToEnd;

/// <summary>One built-in tiny model folder and pipeline for a test class (writing and loading it takes a few seconds).</summary>
public sealed class TinyModelFixture : IDisposable
{
    public string Folder { get; }
    public NewBiePipeline Pipeline { get; }

    public TinyModelFixture()
    {
        Folder = TinyModel.EnsureFolder(Path.Combine(Directory.CreateTempSubdirectory("newbie-tiny-").FullName, "model"));
        Pipeline = NewBiePipeline.Load(Folder, PipelineConfig.Tiny, TorchSharp.torch.CPU, TorchSharp.torch.ScalarType.Float32);
    }

    public void Dispose()
    {
        Pipeline.Dispose();
        Directory.Delete(Path.GetDirectoryName(Folder)!, recursive: true);
    }
}
