using NewBie.Pipeline.Imaging;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.EndToEnd;

public sealed class NewBiePipelineTests(TinyModelFixture tiny) : IClassFixture<TinyModelFixture>
{
    private static GenerationRequest Request(long seed = 7, int steps = 3) => new()
    {
        Prompt = "<character_1><n>tiny</n><gender>1girl</gender></character_1>",
        NegativePrompt = "blurry",
        Width = 64,
        Height = 48,
        Steps = steps,
        Seed = seed,
    };

    private byte[] Png(GenerationRequest request)
    {
        var result = tiny.Pipeline.Generate(request, null, CancellationToken.None);
        var image = Assert.Single(result.Images);
        return PngWriter.Encode(image, GenerationMetadata.For(request, image, tiny.Pipeline.Model.Id));
    }

    [Fact]
    public void Same_seed_gives_identical_png_bytes()
    {
        Assert.Equal(Png(Request(seed: 11)), Png(Request(seed: 11)));
    }

    [Fact]
    public void Different_seed_gives_a_different_image()
    {
        var a = tiny.Pipeline.Generate(Request(seed: 1), null, CancellationToken.None).Images[0];
        var b = tiny.Pipeline.Generate(Request(seed: 2), null, CancellationToken.None).Images[0];
        Assert.NotEqual(a.Rgb, b.Rgb);
    }

    [Fact]
    public void Images_have_the_requested_size_and_seeds_of_a_count_are_consecutive()
    {
        var result = tiny.Pipeline.Generate(Request(seed: 40) with { Count = 2, Sampler = SamplerKind.Midpoint, Steps = 2 }, null, CancellationToken.None);
        Assert.Equal(2, result.Images.Count);
        Assert.Equal(new long[] { 40, 41 }, result.Images.Select(i => i.Seed));
        Assert.All(result.Images, i => Assert.Equal(64 * 48 * 3, i.Rgb.Length));
        Assert.NotEqual(result.Images[0].Rgb, result.Images[1].Rgb);
        var decoded = PngReader.Read(PngWriter.Encode(result.Images[1]));
        Assert.Equal((64, 48), (decoded.Width, decoded.Height));
    }

    [Fact]
    public void Progress_is_reported_for_every_step_of_every_stage()
    {
        var reports = new List<StepProgress>();
        tiny.Pipeline.Generate(Request(steps: 4), new SyncProgress(reports.Add), CancellationToken.None);
        Assert.Equal(GenerationStage.Encoding, reports[0].Stage);
        Assert.Equal(new[] { 1, 2, 3, 4 }, reports.Where(r => r.Stage == GenerationStage.Denoising).Select(r => r.Step));
        Assert.Equal(GenerationStage.Decoding, reports[^1].Stage);
    }

    [Fact]
    public void Cancel_during_a_step_stops_before_the_next_step()
    {
        using var cts = new CancellationTokenSource();
        var steps = new List<int>();
        var progress = new SyncProgress(p =>
        {
            if (p.Stage != GenerationStage.Denoising) return;
            steps.Add(p.Step);
            if (p.Step == 2) cts.Cancel();
        });
        Assert.ThrowsAny<OperationCanceledException>(() => tiny.Pipeline.Generate(Request(steps: 6), progress, cts.Token));
        Assert.Equal(new[] { 1, 2 }, steps);
    }

    [Fact]
    public void Inspect_reports_tokens_and_the_system_prompt_used()
    {
        var xml = tiny.Pipeline.Inspect("<a>tag</a>", "auto");
        Assert.StartsWith("You are an assistant designed to generate high-quality anime images based on xml", xml.SystemPrompt);
        Assert.True(xml.GemmaTokens > 1);
        Assert.Equal(0, xml.GemmaTokensDropped);
        var tags = tiny.Pipeline.Inspect("1girl, solo", "none");
        Assert.Equal("", tags.SystemPrompt);
    }

    [Fact]
    public void The_model_is_labelled_tiny()
    {
        Assert.True(tiny.Pipeline.Model.IsTiny);
        Assert.Equal("newbie-tiny", tiny.Pipeline.Model.Id);
    }

    [Fact]
    public void A_checkpoint_with_a_misshaped_tensor_is_refused_naming_it()
    {
        var copy = CopyTinyFolder();
        try
        {
            var layout = new ModelFolder(copy);
            Rewrite(layout.TransformerWeights, t =>
            {
                t["x_embedder.weight"] = torch.zeros(3, 3);
                return t;
            });
            var ex = Assert.Throws<WeightLoadException>(() => NewBiePipeline.Load(copy, PipelineConfig.Tiny, CPU, float32));
            Assert.Contains("x_embedder.weight", ex.Message);
            Assert.Contains("[3, 3]", ex.Message);
        }
        finally { Directory.Delete(copy, recursive: true); }
    }

    [Fact]
    public void A_checkpoint_with_a_missing_tensor_is_refused_naming_it()
    {
        var copy = CopyTinyFolder();
        try
        {
            var layout = new ModelFolder(copy);
            Rewrite(layout.VaeWeights, t =>
            {
                t.Remove("decoder.conv_out.bias");
                return t;
            });
            var ex = Assert.Throws<WeightLoadException>(() => NewBiePipeline.Load(copy, PipelineConfig.Tiny, CPU, float32));
            Assert.Contains("decoder.conv_out.bias", ex.Message);
        }
        finally { Directory.Delete(copy, recursive: true); }
    }

    [Fact]
    public void An_incomplete_model_folder_is_refused_listing_what_is_missing()
    {
        var copy = CopyTinyFolder();
        try
        {
            File.Delete(Path.Combine(copy, "clip_model", "tokenizer.json"));
            var ex = Assert.Throws<WeightLoadException>(() => NewBiePipeline.Load(copy, PipelineConfig.Tiny, CPU, float32));
            Assert.Contains(Path.Combine("clip_model", "tokenizer.json"), ex.Message);
        }
        finally { Directory.Delete(copy, recursive: true); }
    }

    [Fact]
    public void Tiny_model_folder_is_written_once_and_reused()
    {
        var marker = Path.Combine(tiny.Folder, "newbie-tiny.json");
        var before = File.GetLastWriteTimeUtc(marker);
        TinyModel.EnsureFolder(tiny.Folder);
        Assert.Equal(before, File.GetLastWriteTimeUtc(marker));
    }

    private string CopyTinyFolder()
    {
        var target = Directory.CreateTempSubdirectory("newbie-tiny-copy-").FullName;
        foreach (var file in Directory.GetFiles(tiny.Folder, "*", SearchOption.AllDirectories))
        {
            var dest = Path.Combine(target, Path.GetRelativePath(tiny.Folder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Copy(file, dest);
        }
        return target;
    }

    private static void Rewrite(string path, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> change)
    {
        Dictionary<string, Tensor> tensors;
        using (var file = SafetensorsFile.Open(path))
            tensors = file.Tensors.Keys.ToDictionary(k => k, k => file.Read(k));
        SafetensorsWriter.Write(path, change(tensors));
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests need the reports in order, on the calling thread.</summary>
    private sealed class SyncProgress(Action<StepProgress> report) : IProgress<StepProgress>
    {
        public void Report(StepProgress value) => report(value);
    }
}
