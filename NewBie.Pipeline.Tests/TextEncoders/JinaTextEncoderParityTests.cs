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
    private const string Prefix = "text_model.transformer.roberta.";
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
        return new Case(JinaConfig.Read(Path.Combine(folder, "config.json")), inputs["input_ids"], inputs["attention_mask"],
            ReadAll(Path.Combine(folder, "expected.safetensors")), folder);
    }

    private static void AssertClose(Tensor actual, Tensor expected, Tensor? mask, string what)
    {
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
        using var model = JinaTextEncoder.Load(Path.Combine(folder, weights), c.Config, CPU, float32);
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
        using var model = JinaTextEncoder.Load(c.Lora, c.Config with { DefaultLoraTask = null }, CPU, float32);
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        AssertClose(pooled, c.Expected["pooled_no_lora"], null, "pooled_no_lora");
        AssertClose(tokens, c.Expected["last_hidden_state_no_lora"], c.Mask, "last_hidden_state_no_lora");
        // The adapters are not negligible here, so the with-task test really checks the merge.
        Assert.True(MaxAbsDiff(pooled, c.Expected["pooled"]) > 1e-2);
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Bfloat16_keeps_cosine_above_0_999_for_pooled_and_tokens(string folder, string weights)
    {
        var c = Open(folder);
        using var model = JinaTextEncoder.Load(Path.Combine(folder, weights), c.Config, CPU, bfloat16);
        var (tokens, pooled) = model.Encode(c.Ids, c.Mask);
        Assert.Equal(bfloat16, pooled.dtype);
        var pooledCosine = MinCosine(pooled, c.Expected["pooled"]);
        var tokenCosine = MinCosine(tokens, c.Expected["last_hidden_state"], c.Mask);
        Assert.True(pooledCosine > Bf16MinCosine, $"pooled min cosine {pooledCosine:F6}");
        Assert.True(tokenCosine > Bf16MinCosine, $"token min cosine {tokenCosine:F6}");
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Padding_does_not_change_the_pooled_output(string folder)
    {
        var c = Open(folder);
        using var model = JinaTextEncoder.Load(c.Lora, c.Config, CPU, float32);
        using var batched = model.forward(c.Ids, c.Mask);
        var length = c.Mask[1].sum().item<long>();
        var rows = TensorIndex.Slice(1, 2);
        var slice = TensorIndex.Slice(0, length);
        using var alone = model.forward(c.Ids[rows, slice], c.Mask[rows, slice]);
        Assert.True(MaxAbsDiff(alone[0], batched[1]) < 1e-5);
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
        var tensors = ReadAll(c.Lora).ToDictionary(kv => prefix + kv.Key[Prefix.Length..], kv => kv.Value);
        tensors["vision_model.patch_embed.proj.weight"] = torch.zeros(2, 3);
        tensors["logit_scale"] = torch.zeros(1);
        tensors[prefix + "pooler.dense.weight"] = torch.zeros(64, 64);
        using var model = JinaTextEncoder.Load(Write("variant.safetensors", tensors), c.Config, CPU, float32);
        AssertClose(model.forward(c.Ids, c.Mask), c.Expected["pooled"], null, $"pooled with prefix '{prefix}'");
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Sharded_index_checkpoint_loads_like_the_single_file(string folder, string weights)
    {
        var c = Open(folder);
        TensorFiles.WriteSharded(_dir, ReadAll(Path.Combine(folder, weights)));
        using var model = JinaTextEncoder.Load(_dir, c.Config, CPU, float32);
        AssertClose(model.forward(c.Ids, c.Mask), c.Expected["pooled"], null, $"pooled (sharded {weights})");
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Missing_tensor_is_refused_and_named(string folder, string weights)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, weights));
        Assert.True(tensors.Remove(Prefix + "encoder.layers.1.norm2.bias"));
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("missing.safetensors", tensors), c.Config, CPU, float32));
        Assert.Contains("missing (1): encoder.layers.1.norm2.bias", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Layouts))]
    public void Misshaped_tensor_is_refused_and_named(string folder, string weights)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, weights));
        const string key = Prefix + "encoder.layers.0.mixer.Wqkv.bias";
        tensors[key] = tensors[key][TensorIndex.Slice(0, 128)].contiguous();
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("misshaped.safetensors", tensors), c.Config, CPU, float32));
        Assert.Contains($"{key}: checkpoint [128], expected [192]", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Missing_adapter_half_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Lora);
        const string key = Prefix + "encoder.layers.2.mlp.fc1.parametrizations.weight.0.lora_B";
        Assert.True(tensors.Remove(key));
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("no-lora-b.safetensors", tensors), c.Config, CPU, float32));
        Assert.Contains($"missing (1): {key}", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Misshaped_adapter_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(c.Lora);
        const string key = Prefix + "embeddings.word_embeddings.parametrizations.weight.0.lora_A";
        tensors[key] = tensors[key][TensorIndex.Slice(0, 3)].contiguous();
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("bad-lora-a.safetensors", tensors), c.Config, CPU, float32));
        Assert.Contains($"{key}: checkpoint [3, 320, 4], expected [5, 320, 4]", ex.Message);
    }

    [FixtureTheory("jina"), MemberData(nameof(Folders))]
    public void Adapter_without_its_base_weight_is_refused_and_named(string folder)
    {
        var c = Open(folder);
        var tensors = ReadAll(Path.Combine(folder, "weights_merged.safetensors"));
        const string stray = Prefix + "encoder.layers.0.mlp.fc2.parametrizations.weight.0.lora_A";
        tensors[stray] = torch.zeros(5, 4, 160);
        var ex = Assert.Throws<WeightLoadException>(() => JinaTextEncoder.Load(Write("stray.safetensors", tensors), c.Config, CPU, float32));
        Assert.Contains($"unexpected (1): {stray}", ex.Message);
    }
}
