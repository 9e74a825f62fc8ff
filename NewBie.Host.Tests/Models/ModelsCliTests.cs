using System.Security.Cryptography;
using System.Text.Json;
using NewBie.Host.Models;
using NewBie.Pipeline;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Tokenizers;
using NewBie.Pipeline.Weights;
using Spectre.Console;
using TorchSharp;

namespace NewBie.Host.Tests.Models;

public sealed class ModelsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-models-").FullName;
    private readonly FakeHub _hub = new();
    private readonly StringWriter _output = new();
    private readonly IAnsiConsole _console;

    public ModelsCliTests()
    {
        _console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(_output),
        });
        // Long paths and digests stay on one line, as in a wide terminal.
        _console.Profile.Width = 400;
    }

    public void Dispose()
    {
        _hub.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string ModelsDir => Path.Combine(_dir, "models");

    private static readonly byte[] Big = RandomNumberGenerator.GetBytes(300_000);
    private static readonly byte[] Small = "{\"hello\": 1}"u8.ToArray();

    /// <summary>A manifest of three files: one with size and digest, one unknown, one optional that the hub lacks.</summary>
    private string WriteManifest(string? bigSha = null)
    {
        var manifest = new
        {
            repository = "acme/tiny-model",
            revision = "main",
            endpoint = "https://huggingface.example",
            files = new object[]
            {
                new { path = "transformer/weights.bin", component = "transformer", required = true, size = Big.Length, sha256 = bigSha ?? Convert.ToHexStringLower(SHA256.HashData(Big)) },
                new { path = "transformer/config.json", component = "transformer", required = true, size = "unknown", sha256 = "unknown" },
                new { path = "model_index.json", component = "pipeline", required = false, size = "unknown", sha256 = "unknown" },
            },
        };
        var path = Path.Combine(_dir, "manifest.json");
        File.WriteAllText(path, JsonSerializer.Serialize(manifest));
        _hub.Files["/acme/tiny-model/resolve/main/transformer/weights.bin"] = Big;
        _hub.Files["/acme/tiny-model/resolve/main/transformer/config.json"] = Small;
        return path;
    }

    private Task<int> RunAsync(params string[] args) => ModelsCli.RunAsync(args, _console);

    [Fact]
    public async Task Pull_downloads_every_file_from_the_mirror_endpoint_with_the_token_and_shows_progress()
    {
        var manifest = WriteManifest();

        var exit = await RunAsync("pull", "--endpoint", _hub.Endpoint, "--token", "hf_secret", "--models-dir", ModelsDir, "--manifest", manifest);

        Assert.True(exit == 0, _output.ToString());
        Assert.Equal(Big, File.ReadAllBytes(Path.Combine(ModelsDir, "transformer", "weights.bin")));
        Assert.Equal(Small, File.ReadAllBytes(Path.Combine(ModelsDir, "transformer", "config.json")));
        Assert.False(File.Exists(Path.Combine(ModelsDir, "model_index.json")));
        Assert.Empty(Directory.GetFiles(ModelsDir, "*.part", SearchOption.AllDirectories));
        Assert.All(_hub.Requests, r => Assert.Equal("Bearer hf_secret", r.Authorization));
        var output = _output.ToString();
        Assert.Contains("transformer/weights.bin", output);
        Assert.Contains($"transformer/weights.bin: 50% (", output);
        Assert.Contains($"transformer/weights.bin: 100% ({Big.Length} of {Big.Length} bytes)", output);
        Assert.Contains("model_index.json: not in the repository (optional, skipped)", output);
    }

    [Fact]
    public async Task Interrupted_pull_leaves_a_part_file_and_the_next_pull_resumes_it_with_a_range_request()
    {
        var manifest = WriteManifest();
        const string path = "/acme/tiny-model/resolve/main/transformer/weights.bin";
        _hub.CutAfter[path] = 100_000;

        var first = await RunAsync("pull", "--endpoint", _hub.Endpoint, "--models-dir", ModelsDir, "--manifest", manifest);

        Assert.Equal(1, first);
        Assert.Contains("run the command again to resume", _output.ToString());
        var target = Path.Combine(ModelsDir, "transformer", "weights.bin");
        Assert.False(File.Exists(target));
        var partLength = new FileInfo(target + ".part").Length;
        Assert.InRange(partLength, 1, Big.Length - 1);

        var second = await RunAsync("pull", "--endpoint", _hub.Endpoint, "--models-dir", ModelsDir, "--manifest", manifest);

        Assert.True(second == 0, _output.ToString());
        Assert.Equal(Big, File.ReadAllBytes(target));
        Assert.False(File.Exists(target + ".part"));
        Assert.Contains(_hub.Requests, r => r.Path == path && r.Range == $"bytes={partLength}-");
        Assert.Contains($"transformer/weights.bin: resuming at {partLength} bytes", _output.ToString());
    }

    [Fact]
    public async Task Checksum_mismatch_is_refused_and_nothing_is_placed()
    {
        var manifest = WriteManifest(bigSha: new string('0', 64));

        var exit = await RunAsync("pull", "--endpoint", _hub.Endpoint, "--models-dir", ModelsDir, "--manifest", manifest);

        Assert.Equal(1, exit);
        Assert.Contains("does not match the manifest's 0000", _output.ToString());
        var target = Path.Combine(ModelsDir, "transformer", "weights.bin");
        Assert.False(File.Exists(target));
        Assert.False(File.Exists(target + ".part"));
    }

    [Fact]
    public void Hugging_face_url_is_endpoint_repo_resolve_revision_path()
    {
        var manifest = ModelManifest.Load(ModelManifest.DefaultPath);

        var url = manifest.UrlOf(manifest.Files.First(f => f.Path == "text_encoder/gemma3-4b-it.safetensors"), "https://hf-mirror.com/");

        Assert.Equal("https://hf-mirror.com/NewBie-AI/NewBie-image-Exp0.1/resolve/main/text_encoder/gemma3-4b-it.safetensors", url.ToString());
        Assert.All(manifest.Files, f => Assert.Null(f.Sha256));
    }

    [Fact]
    public async Task Usage_is_printed_for_an_unknown_option()
    {
        Assert.Equal(2, await RunAsync("pull", "--mirror", "x"));
        Assert.Contains("Usage: NewBie models pull", _output.ToString());
    }

    /// <summary>A complete tiny model folder in the released layout: random weights saved by state_dict name, configs, tokenizers.</summary>
    private void WriteTinyModel(Func<string, torch.Tensor, torch.Tensor>? alterTransformer = null)
    {
        var folder = new ModelFolder(ModelsDir);
        Directory.CreateDirectory(folder.Transformer);
        Directory.CreateDirectory(folder.TextEncoder);
        Directory.CreateDirectory(folder.ClipModel);
        Directory.CreateDirectory(folder.Vae);
        using (var dit = NextDiT.CreateRandom(NextDiTConfig.Tiny, 1, torch.CPU, torch.ScalarType.Float32))
        {
            var tensors = dit.state_dict().ToDictionary(kv => kv.Key, kv => alterTransformer?.Invoke(kv.Key, kv.Value) ?? kv.Value);
            SafetensorsWriter.Write(Path.Combine(folder.Transformer, "diffusion_pytorch_model.safetensors"), tensors);
        }
        File.WriteAllText(Path.Combine(folder.Transformer, "config.json"), JsonSerializer.Serialize(NextDiTConfig.Tiny));
        using (var gemma = GemmaTextEncoder.CreateRandom(GemmaConfig.Tiny, 2, torch.CPU, torch.ScalarType.Float32))
            SafetensorsWriter.Write(Path.Combine(folder.TextEncoder, "gemma3-4b-it.safetensors"), gemma.state_dict());
        File.WriteAllText(Path.Combine(folder.TextEncoder, "config.json"), JsonSerializer.Serialize(GemmaConfig.Tiny));
        using (var jina = JinaTextEncoder.CreateRandom(JinaConfig.Tiny, 3, torch.CPU, torch.ScalarType.Float32))
            SafetensorsWriter.Write(Path.Combine(folder.ClipModel, "jina-clip-v2.safetensors"), jina.state_dict());
        File.WriteAllText(Path.Combine(folder.ClipModel, "config.json"), JsonSerializer.Serialize(JinaConfig.Tiny));
        using (var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, 4, torch.CPU, torch.ScalarType.Float32))
            SafetensorsWriter.Write(Path.Combine(folder.Vae, "diffusion_pytorch_model.safetensors"), vae.state_dict());
        File.WriteAllText(Path.Combine(folder.Vae, "config.json"), JsonSerializer.Serialize(VaeConfig.Tiny));
        TinyTokenizers.Write(folder);
    }

    [Fact]
    public async Task Verify_accepts_a_complete_folder_whose_tensors_match_the_architecture()
    {
        WriteTinyModel();

        var exit = await RunAsync("verify", "--models-dir", ModelsDir);

        var output = _output.ToString();
        Assert.True(exit == 0, output);
        Assert.Contains("transformer tensors:", output);
        Assert.Contains("tensors match the architecture", output);
        Assert.Contains("text_encoder/gemma3-4b-it.safetensors:", output);
        foreach (var component in new[] { "transformer", "text_encoder", "clip_model", "vae" })
            Assert.Contains($"✓ {component} tensors:", output);
        // What loading will do, in loading's own words: file and layout, where the settings come from, the adapters.
        foreach (var component in ModelPlan.For(ModelsDir, PipelineConfig.NewBieExp01).Components)
            Assert.Contains($"{component.Component} tensors: {component.Summary}", output);
        Assert.Contains("settings from clip_model/config.json", output);
        Assert.Contains("plain weights, no LoRA adapters stored", output);
    }

    [Fact]
    public async Task Verify_names_a_tensor_with_the_wrong_shape()
    {
        string? altered = null;
        WriteTinyModel((name, tensor) =>
        {
            if (altered is not null || tensor.dim() != 2) return tensor;
            altered = name;
            return tensor.reshape(-1);
        });

        var exit = await RunAsync("verify", "--models-dir", ModelsDir);

        var output = _output.ToString();
        Assert.Equal(1, exit);
        Assert.Contains("misshaped", output);
        Assert.Contains(altered!, output);
        // The same verdict and message as loading gives for this folder.
        var load = Assert.Throws<WeightLoadException>(() => NewBiePipeline.Load(ModelsDir, PipelineConfig.NewBieExp01, torch.CPU, torch.ScalarType.Float32));
        var transformer = ModelPlan.For(ModelsDir, PipelineConfig.NewBieExp01).Components.Single(c => c.Component == "transformer");
        Assert.Contains($"transformer: {transformer.Error}", load.Message);
        Assert.Contains($"transformer tensors: {transformer.Error!.Split(Environment.NewLine)[0]}", output);
    }

    [Fact]
    public async Task Verify_reports_missing_required_files()
    {
        Directory.CreateDirectory(ModelsDir);

        var exit = await RunAsync("verify", "--models-dir", ModelsDir);

        Assert.Equal(1, exit);
        Assert.Contains("transformer/diffusion_pytorch_model.safetensors: missing", _output.ToString());
    }
}
