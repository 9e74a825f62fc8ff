using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;
using static NewBie.Pipeline.Tests.TextEncoders.TensorFiles;

namespace NewBie.Pipeline.Tests.TextEncoders;

/// <summary>
/// The Gemma-3 encoder against the gemma3 fixture (gemma_pytorch reference, fp32). Tolerance from the fixture
/// README: max |Δ| ≤ 1e-4 · max(1, max|expected|) on real positions. bf16 runs are held to cosine > 0.999 per token
/// against the same fp32 expectations (the README's suggested bound).
/// </summary>
[Trait("Category", "Parity")]
public sealed class GemmaTextEncoderParityTests : IDisposable
{
    private const double Fp32Tolerance = 1e-4;
    private const double Bf16MinCosine = 0.999;
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-gemma-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Folders => Fixtures.Folders("gemma3");

    private sealed record Case(GemmaConfig Config, Tensor Ids, Tensor Mask, Dictionary<string, Tensor> Expected, string Weights);

    private static Case Open(string folder)
    {
        var inputs = ReadAll(Path.Combine(folder, "inputs.safetensors"));
        return new Case(GemmaConfig.Read(Path.Combine(folder, "config.json")), inputs["input_ids"], inputs["attention_mask"],
            ReadAll(Path.Combine(folder, "expected.safetensors")), Path.Combine(folder, "weights.safetensors"));
    }

    private static void AssertClose(Tensor actual, Tensor expected, Tensor mask, string what)
    {
        var bound = Fp32Tolerance * Math.Max(1, MaxAbs(expected, mask));
        var diff = MaxAbsDiff(actual, expected, mask);
        Assert.True(diff <= bound, $"{what}: max |Δ| {diff:E3} > {bound:E3}");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Penultimate_hidden_state_matches_reference_in_float32(string folder)
    {
        var c = Open(folder);
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, CPU, float32);
        using var output = model.forward(c.Ids, c.Mask);
        Assert.Equal(c.Expected["penultimate"].shape, output.shape);
        AssertClose(output, c.Expected["penultimate"], c.Mask, "penultimate");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Every_computed_hidden_state_matches_reference_in_float32(string folder)
    {
        var c = Open(folder);
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, CPU, float32);
        var states = model.HiddenStates(c.Ids, c.Mask);
        // Embeddings plus layers 0 … N-2: every Hugging Face hidden state except the final-normed last one.
        Assert.Equal(c.Config.NumHiddenLayers, states.Count);
        AssertClose(states[0], c.Expected["inputs_embeds"], c.Mask, "inputs_embeds");
        for (int i = 0; i < states.Count; i++)
            AssertClose(states[i], c.Expected["hidden_states"][i], c.Mask, $"hidden_states[{i}]");
        for (int i = 1; i < states.Count; i++)
            AssertClose(states[i], c.Expected["layer_outputs"][i - 1], c.Mask, $"layer_outputs[{i - 1}]");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Attention_masks_match_reference_for_real_queries(string folder)
    {
        var c = Open(folder);
        var realQuery = c.Mask.ne(0).unsqueeze(-1);
        foreach (var (window, name) in new[] { ((int?)c.Config.SlidingWindow, "attn_allowed_sliding"), (null, "attn_allowed_full") })
        {
            using var allowed = GemmaTextEncoder.AttentionAllowed(c.Mask, window).squeeze(1);
            var expected = c.Expected[name].ne(0);
            Assert.True(allowed.logical_and(realQuery).equal(expected.logical_and(realQuery)).all().item<bool>(), name);
        }
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Every_query_keeps_a_key_so_padded_rows_stay_finite(string folder)
    {
        // Row 1 has 7 real tokens and window 4: its last padded queries have no real key in their window. A fully
        // masked row is NaN in some SDPA backends (CUDA math), and 0 × NaN would leak into real tokens.
        var c = Open(folder);
        foreach (var window in new int?[] { c.Config.SlidingWindow, null })
        {
            using var allowed = GemmaTextEncoder.AttentionAllowed(c.Mask, window);
            Assert.True(allowed.any(-1).all().item<bool>());
        }
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, CPU, float32);
        foreach (var state in model.HiddenStates(c.Ids, c.Mask))
            Assert.True(state.isfinite().all().item<bool>());
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Padding_does_not_change_real_token_features(string folder)
    {
        var c = Open(folder);
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, CPU, float32);
        using var batched = model.forward(c.Ids, c.Mask);
        var length = c.Mask[1].sum().item<long>();
        var slice = TensorIndex.Slice(0, length);
        using var alone = model.forward(c.Ids[TensorIndex.Slice(1, 2), slice], c.Mask[TensorIndex.Slice(1, 2), slice]);
        Assert.True(MaxAbsDiff(alone[0], batched[1, slice]) < 1e-5);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Bfloat16_penultimate_keeps_cosine_above_0_999_per_token(string folder)
    {
        var c = Open(folder);
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, CPU, bfloat16);
        using var output = model.forward(c.Ids, c.Mask);
        Assert.Equal(bfloat16, output.dtype);
        var cosine = MinCosine(output, c.Expected["penultimate"], c.Mask);
        Assert.True(cosine > Bf16MinCosine, $"min cosine {cosine:F6}");
    }

    public static TheoryData<string, string> LayoutVariants()
    {
        var data = new TheoryData<string, string>();
        if (Fixtures.Kind("gemma3") is not { } folder) return data;
        foreach (var prefix in new[] { "model.language_model.", "language_model.", "model.", "" })
            data.Add(folder, prefix);
        return data;
    }

    [FixtureTheory("gemma3"), MemberData(nameof(LayoutVariants))]
    public void Released_key_layouts_load_and_their_unused_parts_are_skipped(string folder, string prefix)
    {
        var c = Open(folder);
        const string fixturePrefix = "language_model.model.";
        var tensors = ReadAll(c.Weights).ToDictionary(kv => prefix + kv.Key[fixturePrefix.Length..], kv => kv.Value);
        // What a full multimodal / repacked checkpoint carries beyond the layers the encoder runs.
        tensors["vision_tower.vision_model.embeddings.patch_embedding.weight"] = torch.zeros(2, 3);
        tensors["multi_modal_projector.mm_input_projection_weight"] = torch.zeros(2, 2);
        tensors["lm_head.weight"] = torch.zeros(c.Config.VocabSize, c.Config.HiddenSize);
        tensors["language_model.lm_head.weight"] = torch.zeros(c.Config.VocabSize, c.Config.HiddenSize);
        tensors["spiece_model"] = torch.zeros(16, dtype: uint8);
        var path = Path.Combine(_dir, "variant.safetensors");
        SafetensorsWriter.Write(path, tensors);

        using var model = GemmaTextEncoder.Load(path, c.Config, CPU, float32);
        using var output = model.forward(c.Ids, c.Mask);
        AssertClose(output, c.Expected["penultimate"], c.Mask, $"penultimate with prefix '{prefix}'");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Sharded_index_checkpoint_loads_like_the_single_file(string folder)
    {
        var c = Open(folder);
        TensorFiles.WriteSharded(_dir, ReadAll(c.Weights));
        // A released text_encoder/ may hold a single-file repack beside the HF shards; the index wins.
        File.Copy(c.Weights, Path.Combine(_dir, "gemma3-4b-it.safetensors"));
        using var model = GemmaTextEncoder.Load(_dir, c.Config, CPU, float32);
        using var output = model.forward(c.Ids, c.Mask);
        AssertClose(output, c.Expected["penultimate"], c.Mask, "penultimate (sharded)");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Missing_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        const string key = "language_model.model.layers.3.self_attn.k_norm.weight";
        Assert.True(tensors.Remove(key));
        var path = Path.Combine(_dir, "missing.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, CPU, float32));
        Assert.Contains("missing (1): layers.3.self_attn.k_norm.weight", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Misshaped_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        const string key = "language_model.model.layers.2.mlp.up_proj.weight";
        tensors[key] = tensors[key].t().contiguous();
        var path = Path.Combine(_dir, "misshaped.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, CPU, float32));
        Assert.Contains($"{key}: checkpoint [80, 160], expected [160, 80]", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Unknown_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        tensors["language_model.model.layers.0.self_attn.rotary.inv_freq"] = torch.zeros(16);
        var path = Path.Combine(_dir, "unknown.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, CPU, float32));
        Assert.Contains("unexpected (1): language_model.model.layers.0.self_attn.rotary.inv_freq", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Checkpoint_with_more_layers_than_the_config_is_refused(string folder)
    {
        var c = Open(folder);
        var smaller = c.Config with { NumHiddenLayers = 6, LayerTypes = c.Config.LayerTypes!.Take(6).ToList() };
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(c.Weights, smaller, CPU, float32));
        Assert.Contains("language_model.model.layers.6.", ex.Message);
    }
}
