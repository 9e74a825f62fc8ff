using NewBie.Host.Models;

namespace NewBie.Host.Tests.Models;

public sealed class ModelChoiceTests : IDisposable
{
    // The files ModelFolder needs before the real model counts as present.
    private static readonly string[] Complete =
    [
        "transformer/diffusion_pytorch_model.safetensors", "text_encoder/gemma3-4b-it.safetensors", "text_encoder/tokenizer.json",
        "clip_model/jina-clip-v2.safetensors", "clip_model/tokenizer.json", "vae/diffusion_pytorch_model.safetensors",
    ];

    private readonly string _models = Directory.CreateTempSubdirectory("newbie-models-").FullName;

    public void Dispose() => Directory.Delete(_models, recursive: true);

    [Fact]
    public void Auto_without_weights_picks_the_tiny_model_and_says_so()
    {
        var choice = ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "auto" });

        Assert.True(choice.IsTiny);
        Assert.Equal("tiny", choice.Id);
        Assert.Contains("TINY", choice.Reason);
    }

    [Fact]
    public void Auto_with_every_weights_folder_picks_the_real_model()
    {
        PlaceWeights(Complete);

        var choice = ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "auto" });

        Assert.False(choice.IsTiny);
        Assert.Equal("newbie-exp0.1", choice.Id);
        Assert.Equal(Path.GetFullPath(_models), choice.WeightsDir);
    }

    [Fact]
    public void Real_model_asked_for_with_a_folder_missing_is_unavailable_naming_the_folder()
    {
        PlaceWeights(Complete.Where(f => !f.StartsWith("clip_model/")));

        var error = Assert.Throws<EngineUnavailableException>(() => ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "newbie-exp0.1" }));

        Assert.Contains(Path.GetFullPath(_models), error.Message);
        Assert.Contains(Path.Combine("clip_model", "jina-clip-v2.safetensors"), error.Message);
        Assert.True(ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "auto" }).IsTiny);
    }

    [Fact]
    public void Tiny_is_tiny_even_when_weights_are_present()
    {
        PlaceWeights(Complete);

        Assert.True(ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "tiny" }).IsTiny);
    }

    private void PlaceWeights(IEnumerable<string> files)
    {
        foreach (var file in files)
        {
            var path = Path.Combine(_models, file);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, [0]);
        }
    }
}
