using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;
using static NewBie.Pipeline.Tests.TextEncoders.TensorFiles;

namespace NewBie.Pipeline.Tests.TextEncoders;

/// <summary>
/// The Jina CLIP v2 text tower against the jina fixture (NewBie's vendored Jina code, fp32): max |Δ| ≤ 1e-4 for
/// the pooled output and per-token states on real positions (README). Both weight layouts: parametrized with
/// per-task LoRA stacks (merged at load) and plain pre-merged. bf16 is held to cosine > 0.999 against the fp32
/// expectations.
/// </summary>
[Trait("Category", "Parity")]
public sealed class JinaTextEncoderParityTests : IDisposable
{
    private const double Fp32Tolerance = 1e-4;
    private const double Bf16MinCosine = 0.999;
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-jina-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Folders => Fixtures.Folders("jina");

    public static TheoryData<string, string> Layouts()
    {
        var data = new TheoryData<string, string>();
        if (Fixtures.Kind("jina") is not { } folder) return data;
        data.Add(folder, "weights.safetensors");
        data.Add(folder, "weights_merged.safetensors");
        return data;
    }

    private sealed record Case(JinaConfig Config, Tensor Ids, Tensor Mask, Dictionary<string, Tensor> Expected, string Folder)
    {
        public string Lora => Path.Combine(Folder, "weights.safetensors");
    }

    private static Case Open(string folder)
    {
        var inputs = ReadAll(Path.Combine(folder, "inputs.safetensors"));
        return new Case(JinaConfig.Read(Path.Combine(folder, "config.json")), Parity.Input(inputs["input_ids"]), Parity.Input(inputs["attention_mask"]),
            ReadAll(Path.Combine(folder, "expected.safetensors")), folder);
    }

    private static JinaTextEncoder Load(string weights, JinaConfig config) => JinaTextEncoder.Load(weights, config, Parity.Device, Parity.DType);

    /// <summary>The fixture checkpoint's prefix before <c>embeddings.</c> / <c>encoder.</c> (the CLIP model's text tower path).</summary>
    private static string KeyPrefix(IEnumerable<string> keys)
    {
        var key = keys.First(k => k.Contains("embeddings.word_embeddings.", StringComparison.Ordinal));
        return key[..key.IndexOf("embeddings.word_embeddings.", StringComparison.Ordinal)];
    }

    private static void AssertClose(Tensor actual, Tensor expected, Tensor? mask, string what)
    {
        if (!Parity.FullPrecision)
        {
            var m = mask is null ? torch.ones(1) : mask.cpu().to(float32).unsqueeze(-1);
            Parity.Close(expected * m, actual.cpu().to(float32) * m, 0, 0, what);
            return;
        }
        var diff = MaxAbsDiff(actual, expected, mask);
        Assert.True(diff <= Fp32Tolerance, $"{what}: max |Δ| {diff:E3} > {Fp32Tolerance:E0}");
    }

    private string Write(string name, Dictionary<string, Tensor> tensors)
    {
        var path = Path.Combine(_dir, name);
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Pooled_output_and_tokens_match_reference_with_the_query_adapter(string folder, string weights)
    {
        var c = Open(folder);
        using var model = Load(Path.Combine(folder, weights), c.Config);
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        AssertClose(pooled, c.Expected["pooled"], null, $"pooled ({weights})");
        AssertClose(tokens, c.Expected["last_hidden_state"], c.Mask, $"last_hidden_state ({weights})");
        using var forward = model.forward(c.Ids, c.Mask);
        Assert.True(forward.equal(pooled).all().item<bool>());
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Without_a_task_the_adapters_are_left_out(string folder)
    {
        var c = Open(folder);
        using var model = Load(c.Lora, c.Config with { DefaultLoraTask = null });
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        AssertClose(pooled, c.Expected["pooled_no_lora"], null, "pooled_no_lora");
        AssertClose(tokens, c.Expected["last_hidden_state_no_lora"], c.Mask, "last_hidden_state_no_lora");
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Bfloat16_keeps_cosine_above_0_999_for_pooled_and_tokens(string folder, string weights)
    {
        var c = Open(folder);
        using var model = JinaTextEncoder.Load(Path.Combine(folder, weights), c.Config, Parity.Device, bfloat16);
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        Assert.Equal(bfloat16, pooled.dtype);
        var pooledCosine = MinCosine(pooled, c.Expected["pooled"]);
        var tokenCosine = MinCosine(tokens, c.Expected["last_hidden_state"], c.Mask);
        Assert.True(pooledCosine > Bf16MinCosine, $"pooled min cosine {pooledCosine:F6}");
        Assert.True(tokenCosine > Bf16MinCosine, $"token min cosine {tokenCosine:F6}");
    }

    /// <summary>
    /// The released jina-clip-v2 layout: stacks holding only the default task, merged at alpha / rank = 4 / rank (the
    /// released config's alpha). Built from the fixture: its task's rows, with B rescaled so that s·B is unchanged.
    /// </summary>
    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void One_task_adapter_stacks_merge_with_their_configs_alpha_over_rank(string folder)
    {
        var c = Open(folder);
        var task = c.Config.LoraTaskIndex;
        var oneTask = c.Config with { LoraAdaptations = [c.Config.DefaultLoraTask!], LoraAlpha = 4 };
        var rescale = c.Config.LoraScaling / oneTask.LoraScaling;
        var tensors = ReadAll(c.Lora).ToDictionary(kv => kv.Key, kv =>
            kv.Key.EndsWith(".lora_A", StringComparison.Ordinal) ? kv.Value[TensorIndex.Slice(task, task + 1)].contiguous()
            : kv.Key.EndsWith(".lora_B", StringComparison.Ordinal) ? (kv.Value[TensorIndex.Slice(task, task + 1)] * rescale).contiguous()
            : kv.Value);
        using var model = Load(Write("one-task.safetensors", tensors), oneTask);
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        AssertClose(pooled, c.Expected["pooled"], null, "pooled (one-task stacks, alpha 4)");
        AssertClose(tokens, c.Expected["last_hidden_state"], c.Mask, "last_hidden_state (one-task stacks, alpha 4)");
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Padding_does_not_change_the_pooled_output(string folder)
    {
        var c = Open(folder);
        using var model = Load(c.Lora, c.Config);
        using var batched = model.forward(c.Ids, c.Mask);
        for (var row = 0; row < c.Ids.shape[0]; row++)
        {
            var length = c.Mask[row].sum().item<long>();
            var rows = TensorIndex.Slice(row, row + 1);
            var slice = TensorIndex.Slice(0, length);
            using var alone = model.forward(c.Ids[rows, slice], c.Mask[rows, slice]);
            AssertClose(alone, batched[rows], null, $"row {row} alone");
        }
    }

    public static TheoryData<string, string> PrefixVariants()
    {
        var data = new TheoryData<string, string>();
        if (Fixtures.Kind("jina") is not { } folder) return data;
        foreach (var prefix in new[] { "roberta.", "model.", "" })
            data.Add(folder, prefix);
        return data;
    }

    [FixtureTheory("jina"), MemberData(nameof(PrefixVariants))]
    public void Other_key_layouts_load_and_unused_clip_parts_are_skipped(string folder, string prefix)
    {
        var c = Open(folder);
        var original = ReadAll(c.Lora);
        var fixturePrefix = KeyPrefix(original.Keys);
        var tensors = original.ToDictionary(kv => prefix + kv.Key[fixturePrefix.Length..], kv => kv.Value);
        tensors["vision_model.patch_embed.proj.weight"] = torch.zeros(2, 3);
        tensors["logit_scale"] = torch.zeros(1);
        tensors[prefix + "pooler.dense.weight"] = torch.zeros(c.Config.HiddenSize, c.Config.HiddenSize);
        using var model = Load(Write("variant.safetensors", tensors), c.Config);
        AssertClose(model.forward(c.Ids, c.Mask), c.Expected["pooled"], null, $"pooled with prefix '{prefix}'");
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Sharded_index_checkpoint_loads_like_the_single_file(string folder, string weights)
    {
        var c = Open(folder);
        TensorFiles.WriteSharded(_dir, ReadAll(Path.Combine(folder, weights)));
        using var model = Load(_dir, c.Config);
        AssertClose(model.forward(c.Ids, c.Mask), c.Expected["pooled"], null, $"pooled (sharded {weights})");
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Missing_tensor_is_refused_and_named(string folder, string weights)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, weights));
        Assert.True(tensors.Remove(KeyPrefix(tensors.Keys) + "encoder.layers.0.norm2.bias"));
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("missing.safetensors", tensors), c.Config, META, float32));
        Assert.Contains("missing (1): encoder.layers.0.norm2.bias", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Misshaped_tensor_is_refused_and_named(string folder, string weights)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, weights));
        var key = KeyPrefix(tensors.Keys) + "encoder.layers.0.mixer.Wqkv.bias";
        long full = tensors[key].shape[0], cut = full - c.Config.HiddenSize;
        tensors[key] = tensors[key][TensorIndex.Slice(0, cut)].contiguous();
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("misshaped.safetensors", tensors), c.Config, META, float32));
        Assert.Contains($"{key}: checkpoint [{cut}], expected [{full}]", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Missing_adapter_half_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Lora);
        var key = KeyPrefix(tensors.Keys) + "encoder.layers.0.mlp.fc1.parametrizations.weight.0.lora_B";
        Assert.True(tensors.Remove(key));
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("no-lora-b.safetensors", tensors), c.Config, META, float32));
        Assert.Contains($"missing (1): {key}", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Misshaped_adapter_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Lora);
        var key = KeyPrefix(tensors.Keys) + "embeddings.word_embeddings.parametrizations.weight.0.lora_A";
        var shape = tensors[key].shape;
        // One task row too many: neither the config's task count nor a one-task stack.
        tensors[key] = torch.cat([tensors[key], tensors[key][TensorIndex.Slice(0, 1)]], 0);
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("bad-lora-a.safetensors", tensors), c.Config, META, float32));
        Assert.Contains($"{key}: checkpoint [{shape[0] + 1}, {shape[1]}, {shape[2]}], expected [{shape[0]}, {shape[1]}, {shape[2]}]", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Adapter_without_its_base_weight_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, "weights_merged.safetensors"));
        var stray = KeyPrefix(tensors.Keys) + "encoder.layers.0.mlp.fc2.parametrizations.weight.0.lora_A";
        tensors[stray] = torch.zeros(c.Config.LoraAdaptations.Count, c.Config.LoraRank, c.Config.IntermediateSize);
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("stray.safetensors", tensors), c.Config, META, float32));
        Assert.Contains($"unexpected (1): {stray}", ex.Message);
    }
}
