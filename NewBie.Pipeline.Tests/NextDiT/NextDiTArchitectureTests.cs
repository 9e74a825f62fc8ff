using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.NextDiT;

public sealed class NextDiTArchitectureTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-dit-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A small config of the released structure, fast enough to build and run in every test.</summary>
    private static readonly NextDiTConfig Small = NextDiTConfig.Tiny with { Dim = 32, NHeads = 4, NKvHeads = 2, AxesDims = [2, 2, 4], CapFeatDim = 12, ClipTextDim = 8 };

    [FixtureTheory("nextdit"), MemberData(nameof(Folders))]
    public void NewBie3B_state_dict_matches_the_released_checkpoint_keys_and_shapes(string folder)
    {
        var path = Path.Combine(folder, "full_checkpoint_keys.txt");
        var expected = File.ReadLines(path)
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split('\t'))
            .ToDictionary(p => p[0], p => p[1]);

        // Built on the meta device: shapes only, no 14 GB allocation.
        using var model = new Pipeline.NextDiT(NextDiTConfig.NewBie3B, META, bfloat16);
        var actual = model.state_dict().ToDictionary(kv => kv.Key, kv => "[" + string.Join(", ", kv.Value.shape) + "]");

        Assert.Empty(expected.Keys.Except(actual.Keys));
        Assert.Empty(actual.Keys.Except(expected.Keys));
        Assert.All(expected, kv => Assert.Equal((kv.Key, kv.Value), (kv.Key, actual[kv.Key])));
        Assert.Equal(3_486_636_096L, model.state_dict().Values.Sum(t => t.numel()));
    }

    [Fact]
    public void Released_transformer_config_json_reads_as_the_NewBie3B_preset()
    {
        var path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, """
            {"model_type":"nextdit_clip","patch_size":2,"dim":2304,"n_layers":36,"n_heads":24,"n_kv_heads":8,
             "in_channels":16,"axes_dims":[32,32,32],"axes_lens":[1024,512,512],"clip_text_dim":1024,"clip_img_dim":1024,
             "_class_name":"NextDiT_3B_GQA_patch2_Adaln_Refiner_WHIT_CLIP"}
            """);
        var config = NextDiTConfig.Load(path);
        Assert.Equal(NextDiTConfig.NewBie3B with { AxesDims = config.AxesDims, AxesLens = config.AxesLens }, config);
        Assert.Equal([32, 32, 32], config.AxesDims);
        Assert.Equal([1024, 512, 512], config.AxesLens);
        Assert.Equal((96, 9216, 1024), (config.HeadDim, config.FfnHiddenDim, config.AdaLnDim));
    }

    [Theory]
    [InlineData(128, 31.2, 61.4)]
    [InlineData(256, 32.4, 62.5)]
    [InlineData(512, 34.6, 64.8)]
    public void Forward_flops_at_1024_match_the_model_spec_table(int captionTokens, double forwardTflop, double cfgStepTflop)
    {
        // The table is rounded to 0.1 TFLOP (its L = 128 CFG row sits 0.06 above this formula), hence the 0.1 tolerance.
        var c = NextDiTConfig.NewBie3B;
        Assert.Equal(forwardTflop, c.ForwardFlops(captionTokens, 4096) / 1e12, 0.1);
        Assert.Equal(cfgStepTflop, (c.ForwardFlops(captionTokens, 4096) + c.ForwardFlops(1, 4096)) / 1e12, 0.1);
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Fixture_config_gives_the_derived_sizes_it_states(string folder)
    {
        var config = NextDiTConfig.Load(Path.Combine(folder, "config.json"));
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        var model = doc.RootElement.GetProperty("model");
        Assert.Equal(model.GetProperty("head_dim").GetInt32(), config.HeadDim);
        Assert.Equal(model.GetProperty("ffn_hidden_dim").GetInt32(), config.FfnHiddenDim);
        Assert.Equal(model.GetProperty("adaln_dim").GetInt32(), config.AdaLnDim);
    }

    public static TheoryData<string> Folders => Fixtures.Folders("nextdit");

    [Theory]
    [InlineData("dim", 30)]
    [InlineData("n_kv_heads", 3)]
    [InlineData("axes_dims", 0)]
    public void Invalid_config_is_refused_naming_the_numbers(string field, int value)
    {
        var bad = field switch
        {
            "dim" => Small with { Dim = value },
            "n_kv_heads" => Small with { NKvHeads = value },
            _ => Small with { AxesDims = [2, 2, 2] },
        };
        var ex = Assert.Throws<ArgumentException>(() => new Pipeline.NextDiT(bad, META, float32));
        Assert.Contains(field, ex.Message);
    }

    [Fact]
    public void Tiny_preset_builds_and_keeps_encoder_widths_as_config_values()
    {
        using var model = Pipeline.NextDiT.CreateRandom(NextDiTConfig.Tiny, 1, CPU, float32);
        var sd = model.state_dict();
        Assert.Equal([64L, 64], sd["cap_embedder.1.weight"].shape);
        Assert.Equal([64L, 64], sd["clip_text_pooled_proj.1.weight"].shape);
    }

    [Fact]
    public void Random_init_is_reproducible_from_the_seed()
    {
        using var a = Pipeline.NextDiT.CreateRandom(Small, 7, CPU, float32);
        using var b = Pipeline.NextDiT.CreateRandom(Small, 7, CPU, float32);
        using var c = Pipeline.NextDiT.CreateRandom(Small, 8, CPU, float32);
        var sa = a.state_dict(); var sb = b.state_dict(); var sc = c.state_dict();
        Assert.All(sa, kv => Assert.True(kv.Value.allclose(sb[kv.Key], rtol: 0, atol: 0), kv.Key));
        Assert.False(sa["layers.0.attention.qkv.weight"].allclose(sc["layers.0.attention.qkv.weight"], rtol: 0, atol: 0));
    }

    private string SaveWeights(Pipeline.NextDiT model, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>> edit, string name = "w.safetensors")
    {
        var path = Path.Combine(_dir, name);
        SafetensorsWriter.Write(path, edit(model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value)));
        return path;
    }

    [Fact]
    public void Load_round_trips_the_weights_and_the_output()
    {
        using var source = Pipeline.NextDiT.CreateRandom(Small, 3, CPU, float32);
        var path = SaveWeights(source, d => d);
        using var loaded = Pipeline.NextDiT.Load(path, Small, CPU, float32);
        var (x, t, cap, mask, pooled) = Inputs(Small, batch: 1, capLen: 5);
        using var _ = torch.no_grad();
        Assert.True(source.forward(x, t, cap, mask, pooled).allclose(loaded.forward(x, t, cap, mask, pooled), rtol: 0, atol: 0));
    }

    [Theory]
    [InlineData("model.diffusion_model.")]
    [InlineData("inner_model.")]
    public void Load_accepts_prefixed_checkpoints_and_ignores_other_components(string prefix)
    {
        using var source = Pipeline.NextDiT.CreateRandom(Small, 3, CPU, float32);
        var path = SaveWeights(source, d =>
        {
            var prefixed = d.ToDictionary(kv => prefix + kv.Key, kv => kv.Value);
            prefixed["vae.decoder.conv_in.weight"] = torch.zeros(2, 2);
            return prefixed;
        });
        using var loaded = Pipeline.NextDiT.Load(path, Small, CPU, float32);
        Assert.True(loaded.state_dict()["final_layer.linear.weight"].allclose(source.state_dict()["final_layer.linear.weight"], rtol: 0, atol: 0));
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_is_refused_naming_it()
    {
        using var source = Pipeline.NextDiT.CreateRandom(Small, 3, CPU, float32);
        var path = SaveWeights(source, d => { d.Remove("layers.1.feed_forward.w2.weight"); return d; });
        var ex = Assert.Throws<WeightLoadException>(() => Pipeline.NextDiT.Load(path, Small, CPU, float32));
        Assert.Contains("missing (1): layers.1.feed_forward.w2.weight", ex.Message);
    }

    [Fact]
    public void Checkpoint_with_a_misshaped_tensor_is_refused_naming_it()
    {
        using var source = Pipeline.NextDiT.CreateRandom(Small, 3, CPU, float32);
        var path = SaveWeights(source, d => { d["noise_refiner.0.adaLN_modulation.1.bias"] = torch.zeros(5); return d; });
        var ex = Assert.Throws<WeightLoadException>(() => Pipeline.NextDiT.Load(path, Small, CPU, float32));
        Assert.Contains("noise_refiner.0.adaLN_modulation.1.bias: checkpoint [5], expected [128]", ex.Message);
    }

    private static (Tensor X, Tensor T, Tensor Cap, Tensor Mask, Tensor Pooled) Inputs(NextDiTConfig c, int batch, int capLen, int h = 6, int w = 4)
    {
        using var g = new SeededRandom(99);
        return (g.Normal([batch, c.InChannels, h, w]),
            g.Uniform([batch]),
            g.Normal([batch, capLen, c.CapFeatDim]),
            torch.ones([batch, capLen], dtype: int64),
            g.Normal([batch, c.ClipTextDim]));
    }

    [Fact]
    public void Padded_caption_rows_have_no_effect()
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 5, CPU, float32);
        var (x, t, cap, mask, pooled) = Inputs(Small, batch: 1, capLen: 4);
        var padded = torch.cat([cap, torch.randn(1, 3, Small.CapFeatDim) * 100], 1);
        var paddedMask = torch.cat([mask, torch.zeros(1, 3, dtype: int64)], 1);
        using var _ = torch.no_grad();
        TensorAssert.Close(model.forward(x, t, cap, mask, pooled), model.forward(x, t, padded, paddedMask, pooled), 1e-5, 1e-5, "padded vs exact caption");
    }

    [Fact]
    public void Left_padded_caption_mask_is_refused()
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 5, CPU, float32);
        var (x, t, cap, _, pooled) = Inputs(Small, batch: 1, capLen: 4);
        var leftPadded = torch.tensor(new long[] { 0, 1, 1, 1 }).unsqueeze(0);
        var ex = Assert.Throws<ArgumentException>(() => model.forward(x, t, cap, leftPadded, pooled));
        Assert.Contains("right-padded", ex.Message);
    }

    [Fact]
    public void Velocity_depends_on_time_caption_and_pooled_vector()
    {
        using var model = Pipeline.NextDiT.CreateRandom(Small, 5, CPU, float32);
        var (x, t, cap, mask, pooled) = Inputs(Small, batch: 1, capLen: 4);
        using var _ = torch.no_grad();
        var v = model.forward(x, t, cap, mask, pooled);
        Assert.False(v.allclose(model.forward(x, t + 0.3, cap, mask, pooled)), "time is ignored");
        Assert.False(v.allclose(model.forward(x, t, cap.flip(1), mask, pooled)), "caption order is ignored");
        Assert.False(v.allclose(model.forward(x, t, cap, mask, pooled * 2)), "pooled vector is ignored");
    }
}
