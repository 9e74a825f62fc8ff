using NewBie.Host.Models;

namespace NewBie.Host.Tests.Models;

public sealed class ModelChoiceTests : IDisposable
{
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
        PlaceWeights(ModelChoice.RequiredFolders);

        var choice = ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "auto" });

        Assert.False(choice.IsTiny);
        Assert.Equal("newbie-exp0.1", choice.Id);
        Assert.Equal(Path.GetFullPath(_models), choice.WeightsDir);
    }

    [Fact]
    public void Real_model_asked_for_with_a_folder_missing_is_unavailable_naming_the_folder()
    {
        PlaceWeights(["transformer", "text_encoder", "vae"]);

        var error = Assert.Throws<EngineUnavailableException>(() => ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "newbie-exp0.1" }));

        Assert.Contains(Path.GetFullPath(_models), error.Message);
        Assert.True(ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "auto" }).IsTiny);
    }

    [Fact]
    public void Tiny_is_tiny_even_when_weights_are_present()
    {
        PlaceWeights(ModelChoice.RequiredFolders);

        Assert.True(ModelChoice.Resolve(new ModelsOptions { ModelsDir = _models, Model = "tiny" }).IsTiny);
    }

    private void PlaceWeights(IEnumerable<string> folders)
    {
        foreach (var folder in folders)
        {
            Directory.CreateDirectory(Path.Combine(_models, folder));
            File.WriteAllBytes(Path.Combine(_models, folder, "model.safetensors"), [0]);
        }
    }
}
