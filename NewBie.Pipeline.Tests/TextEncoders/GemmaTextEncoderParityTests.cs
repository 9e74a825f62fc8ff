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
        return new Case(GemmaConfig.Read(Path.Combine(folder, "config.json")), Parity.Input(inputs["input_ids"]), Parity.Input(inputs["attention_mask"]),
            ReadAll(Path.Combine(folder, "expected.safetensors")), Path.Combine(folder, "weights.safetensors"));
    }

    private static GemmaTextEncoder Load(string weights, GemmaConfig config) => GemmaTextEncoder.Load(weights, config, Parity.Device, Parity.DType);

    /// <summary>The key prefix the fixture's checkpoint uses before <c>embed_tokens.weight</c> / <c>layers.N.</c>.</summary>
    private static string KeyPrefix(IEnumerable<string> keys)
    {
        var embed = keys.Single(k => k.EndsWith("embed_tokens.weight", StringComparison.Ordinal));
        return embed[..^"embed_tokens.weight".Length];
    }

    private static void AssertClose(Tensor actual, Tensor expected, Tensor mask, string what)
    {
        if (!Parity.FullPrecision)
        {
            var m = mask.cpu().to(float32).unsqueeze(-1);
            Parity.Close(expected * m, actual.cpu().to(float32) * m, 0, 0, what);
            return;
        }
        var bound = Fp32Tolerance * Math.Max(1, MaxAbs(expected, mask));
        var diff = MaxAbsDiff(actual, expected, mask);
        Assert.True(diff <= bound, $"{what}: max |Δ| {diff:E3} > {bound:E3}");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Penultimate_hidden_state_matches_reference_in_float32(string folder)
    {
        var c = Open(folder);
        using var model = Load(c.Weights, c.Config);
        using var output = model.forward(c.Ids, c.Mask);
        Assert.Equal(c.Expected["penultimate"].shape, output.shape);
        AssertClose(output, c.Expected["penultimate"], c.Mask, "penultimate");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Every_computed_hidden_state_matches_reference_in_float32(string folder)
    {
        var c = Open(folder);
        using var model = Load(c.Weights, c.Config);
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
        var mask = c.Mask.cpu();
        var realQuery = mask.ne(0).unsqueeze(-1);
        foreach (var (window, name) in new[] { ((int?)c.Config.SlidingWindow, "attn_allowed_sliding"), (null, "attn_allowed_full") })
        {
            using var allowed = GemmaTextEncoder.AttentionAllowed(mask, window).squeeze(1);
            var expected = c.Expected[name].ne(0);
            Assert.True(allowed.logical_and(realQuery).equal(expected.logical_and(realQuery)).all().item<bool>(), name);
        }
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Every_query_keeps_a_key_so_padded_rows_stay_finite(string folder)
    {
        // A short row with a sliding window: its last padded queries may have no real key in their window. A fully
        // masked row is NaN in some SDPA backends (CUDA math), and 0 × NaN would leak into real tokens.
        var c = Open(folder);
        foreach (var window in new int?[] { c.Config.SlidingWindow, null })
        {
            using var allowed = GemmaTextEncoder.AttentionAllowed(c.Mask, window);
            Assert.True(allowed.any(-1).all().item<bool>());
        }
        using var model = Load(c.Weights, c.Config);
        foreach (var state in model.HiddenStates(c.Ids, c.Mask))
            Assert.True(state.isfinite().all().item<bool>());
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Padding_does_not_change_real_token_features(string folder)
    {
        var c = Open(folder);
        using var model = Load(c.Weights, c.Config);
        using var batched = model.forward(c.Ids, c.Mask);
        for (var row = 0; row < c.Ids.shape[0]; row++)
        {
            var length = c.Mask[row].sum().item<long>();
            var slice = TensorIndex.Slice(0, length);
            var rows = TensorIndex.Slice(row, row + 1);
            using var alone = model.forward(c.Ids[rows, slice], c.Mask[rows, slice]);
            // Row by row the arithmetic is the same up to float rounding of other matmul shapes.
            AssertClose(alone, batched[rows, slice], c.Mask[rows, slice], $"row {row} alone");
        }
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Bfloat16_penultimate_keeps_cosine_above_0_999_per_token(string folder)
    {
        var c = Open(folder);
        using var model = GemmaTextEncoder.Load(c.Weights, c.Config, Parity.Device, bfloat16);
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
        var original = ReadAll(c.Weights);
        var fixturePrefix = KeyPrefix(original.Keys);
        var tensors = original.ToDictionary(kv => prefix + kv.Key[fixturePrefix.Length..], kv => kv.Value);
        // What a full multimodal / repacked checkpoint carries beyond the layers the encoder runs.
        tensors["vision_tower.vision_model.embeddings.patch_embedding.weight"] = torch.zeros(2, 3);
        tensors["multi_modal_projector.mm_input_projection_weight"] = torch.zeros(2, 2);
        tensors["lm_head.weight"] = torch.zeros(c.Config.VocabSize, c.Config.HiddenSize);
        tensors["language_model.lm_head.weight"] = torch.zeros(c.Config.VocabSize, c.Config.HiddenSize);
        tensors["spiece_model"] = torch.zeros(16, dtype: uint8);
        var path = Path.Combine(_dir, "variant.safetensors");
        SafetensorsWriter.Write(path, tensors);

        using var model = Load(path, c.Config);
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
        using var model = Load(_dir, c.Config);
        using var output = model.forward(c.Ids, c.Mask);
        AssertClose(output, c.Expected["penultimate"], c.Mask, "penultimate (sharded)");
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Missing_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        var key = KeyPrefix(tensors.Keys) + "layers.0.self_attn.k_norm.weight";
        Assert.True(tensors.Remove(key));
        var path = Path.Combine(_dir, "missing.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, META, float32));
        Assert.Contains("missing (1): layers.0.self_attn.k_norm.weight", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Misshaped_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        var key = KeyPrefix(tensors.Keys) + "layers.0.mlp.up_proj.weight";
        long rows = tensors[key].shape[0], columns = tensors[key].shape[1];
        tensors[key] = tensors[key].t().contiguous();
        var path = Path.Combine(_dir, "misshaped.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, META, float32));
        Assert.Contains($"{key}: checkpoint [{columns}, {rows}], expected [{rows}, {columns}]", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Unknown_tensor_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Weights);
        var key = KeyPrefix(tensors.Keys) + "layers.0.self_attn.rotary.inv_freq";
        tensors[key] = torch.zeros(16);
        var path = Path.Combine(_dir, "unknown.safetensors");
        SafetensorsWriter.Write(path, tensors);
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(path, c.Config, META, float32));
        Assert.Contains($"unexpected (1): {key}", ex.Message);
    }

    [FixtureTheory("gemma3"), MemberData(nameof(Folders))]
    public void Checkpoint_with_more_layers_than_the_config_is_refused(string folder)
    {
        var c = Open(folder);
        // Two layers fewer: the checkpoint's last two run layers (the config's last one is never run) are unexpected.
        var layers = c.Config.NumHiddenLayers - 2;
        Assert.True(layers >= 1, "the fixture needs at least 3 layers for this test");
        var smaller = c.Config with { NumHiddenLayers = layers, LayerTypes = c.Config.LayerTypes?.Take(layers).ToList() };
        var ex = Assert.Throws<WeightLoadException>(() => GemmaTextEncoder.Load(c.Weights, smaller, META, float32));
        using var file = SafetensorsFile.Open(c.Weights);
        Assert.Contains($"{KeyPrefix(file.Tensors.Keys)}layers.{layers}.", ex.Message);
    }
}
