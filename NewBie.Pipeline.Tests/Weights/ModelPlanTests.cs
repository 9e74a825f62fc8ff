using System.Text.Json;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Weights;

/// <summary>
/// The one planning path (ModelPlan) that loading and <c>models verify</c> share: settings from each component's
/// config.json, the real released layouts planned on the META device, the same messages from plan and load.
/// </summary>
public sealed class ModelPlanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-plan-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Released(string relative) => Path.Combine(Fixtures.RepositoryRoot, "NewBie.Pipeline.Tests", "TestData", "released", relative);

    private static IEnumerable<(string, string, long[])> Keys(nn.Module module, string prefix = "") =>
        module.state_dict().Select(kv => (prefix + kv.Key, "BF16", kv.Value.shape));

    /// <summary>The jina-clip-v2 parametrization layout: every matrix as .original plus its task LoRA stacks of <paramref name="tasks"/> rows.</summary>
    private static IEnumerable<(string, string, long[])> ParametrizedJinaKeys(JinaConfig config, int tasks)
    {
        using var model = new JinaTextEncoder(config, META, bfloat16);
        const string prefix = "text_model.transformer.roberta.";
        long r = config.LoraRank;
        foreach (var (key, tensor) in model.state_dict())
        {
            if (tensor.dim() != 2 || !key.EndsWith(".weight", StringComparison.Ordinal))
            {
                yield return (prefix + key, "BF16", tensor.shape);
                continue;
            }
            var stem = prefix + key[..^".weight".Length] + ".parametrizations.weight.";
            long rows = tensor.shape[0], columns = tensor.shape[1];
            var embedding = key.StartsWith("embeddings.", StringComparison.Ordinal);
            yield return (stem + "original", "BF16", tensor.shape);
            yield return (stem + "0.lora_A", "BF16", embedding ? [tasks, rows, r] : [tasks, r, columns]);
            yield return (stem + "0.lora_B", "BF16", embedding ? [tasks, r, columns] : [tasks, rows, r]);
        }
    }

    private string Component(string name)
    {
        var dir = Path.Combine(_dir, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void Released_layout_is_planned_on_the_meta_device_with_the_settings_of_each_config_json()
    {
        var transformer = Component("transformer");
        File.Copy(Released("transformer/config.json"), Path.Combine(transformer, "config.json"));
        HeaderOnlyCheckpoint.Write(Path.Combine(transformer, "diffusion_pytorch_model.safetensors"),
            HeaderOnlyCheckpoint.ReadKeyList(Released("transformer/checkpoint_keys.txt"), "BF16"));

        var clip = Component("clip_model");
        File.Copy(Released("clip_model/config.json"), Path.Combine(clip, "config.json"));
        var jinaConfig = JinaConfig.Read(Released("clip_model/config.json"));
        HeaderOnlyCheckpoint.Write(Path.Combine(clip, "jina-clip-v2.safetensors"),
            [.. ParametrizedJinaKeys(jinaConfig, tasks: 1), ("vision_model.patch_embed.proj.weight", "BF16", [1024, 3, 14, 14]), ("logit_scale", "F32", [])]);

        var vae = Component("vae");
        File.Copy(Released("vae/config.json"), Path.Combine(vae, "config.json"));
        using (var decoder = new FluxVaeDecoder(VaeConfig.FromFile(Released("vae/config.json")), META, bfloat16))
            HeaderOnlyCheckpoint.Write(Path.Combine(vae, "diffusion_pytorch_model.safetensors"),
                [.. Keys(decoder), ("encoder.conv_in.weight", "BF16", [128, 3, 3, 3])]);

        // No public copy of gemma-3-4b-it's config.json: the preset stands in (and says so); the released prefix and
        // the parts the encoder never runs (last layer, final norm, vision tower) are in the key list.
        var text = Component("text_encoder");
        using (var gemma = new GemmaTextEncoder(GemmaConfig.Gemma3_4B, META, bfloat16))
        {
            var keys = Keys(gemma, "language_model.model.").ToList();
            var last = GemmaConfig.Gemma3_4B.NumHiddenLayers - 1;
            keys.AddRange(keys.Where(k => k.Item1.StartsWith($"language_model.model.layers.{last - 1}.", StringComparison.Ordinal)).ToList()
                .Select(k => (k.Item1.Replace($"layers.{last - 1}.", $"layers.{last}."), k.Item2, k.Item3)));
            keys.Add(("language_model.model.norm.weight", "BF16", [GemmaConfig.Gemma3_4B.HiddenSize]));
            keys.Add(("vision_tower.vision_model.embeddings.patch_embedding.weight", "BF16", [1152, 3, 14, 14]));
            HeaderOnlyCheckpoint.Write(Path.Combine(text, "gemma3-4b-it.safetensors"), keys);
        }

        var plan = ModelPlan.For(_dir, PipelineConfig.NewBieExp01);

        Assert.All(plan.Components, c => Assert.True(c.Ok, $"{c.Component}: {c.Summary}"));
        Assert.Null(plan.ConfigError);
        // Only the tokenizers are absent from this folder.
        Assert.Equal([Path.Combine("text_encoder", "tokenizer.json"), Path.Combine("clip_model", "tokenizer.json")], plan.Missing);
        var byName = plan.Components.ToDictionary(c => c.Component);
        Assert.Equal(535, byName["transformer"].Tensors);
        Assert.Equal(NextDiTConfig.NewBie3B with { AxesDims = plan.Config.NextDiT.AxesDims, AxesLens = plan.Config.NextDiT.AxesLens }, plan.Config.NextDiT);
        Assert.Equal(VaeConfig.FluxVae with { BlockOutChannels = plan.Config.Vae.BlockOutChannels }, plan.Config.Vae);
        Assert.Equal(VaeConfig.FluxVae.BlockOutChannels, plan.Config.Vae.BlockOutChannels);
        Assert.Equal(["retrieval.query"], plan.Config.Jina.LoraAdaptations);
        Assert.Equal(1.0, plan.Config.Jina.LoraScaling);
        Assert.Contains("settings from transformer/config.json", byName["transformer"].Summary);
        Assert.Contains("settings from clip_model/config.json", byName["clip_model"].Summary);
        Assert.Contains("settings from the built-in preset (no config.json)", byName["text_encoder"].Summary);
        Assert.Contains("LoRA adapter 'retrieval.query' merged into", byName["clip_model"].Summary);
        Assert.Contains("scale lora_alpha / lora_rank = 4 / 4 = 1", byName["clip_model"].Summary);
        Assert.Contains("jina-clip-v2.safetensors, one file", byName["clip_model"].Summary);
    }

    [Fact]
    public void Five_task_adapter_stacks_under_the_released_one_task_config_are_refused_naming_the_shapes()
    {
        var clip = Component("clip_model");
        File.Copy(Released("clip_model/config.json"), Path.Combine(clip, "config.json"));
        var config = JinaConfig.Read(Released("clip_model/config.json"));
        HeaderOnlyCheckpoint.Write(Path.Combine(clip, "jina-clip-v2.safetensors"), ParametrizedJinaKeys(config, tasks: 5));

        var plan = ModelPlan.For(_dir, PipelineConfig.NewBieExp01);

        var component = plan.Components.Single(c => c.Component == "clip_model");
        Assert.False(component.Ok);
        Assert.Contains("tasks 1, rank 4", component.Error);
        Assert.Contains("embeddings.word_embeddings.parametrizations.weight.0.lora_A: checkpoint [5, 250002, 4], expected [1, 250002, 4]", component.Error);
    }

    private string TinyFolder() => TinyModel.EnsureFolder(Path.Combine(_dir, "tiny"));

    [Fact]
    public void Loading_refuses_a_folder_with_exactly_the_plans_messages()
    {
        var folder = TinyFolder();
        var weights = new ModelFolder(folder).TransformerWeights;
        var tensors = TensorAssert.ReadAll(weights);
        var key = tensors.Keys.Order(StringComparer.Ordinal).First(k => tensors[k].dim() == 2 && tensors[k].shape[0] != tensors[k].shape[1]);
        tensors[key] = tensors[key].t().contiguous();
        tensors.Remove(tensors.Keys.Order(StringComparer.Ordinal).Last());
        SafetensorsWriter.Write(weights, tensors);

        var plan = ModelPlan.For(folder, PipelineConfig.Tiny);
        var ex = Assert.Throws<WeightLoadException>(() => NewBiePipeline.Load(folder, PipelineConfig.Tiny, CPU, float32));

        Assert.False(plan.Ok);
        Assert.Equal(string.Join(Environment.NewLine, plan.Problems), ex.Message);
        Assert.Contains(key, ex.Message);
        Assert.Contains("missing (1)", ex.Message);
    }

    [Fact]
    public void A_component_config_json_wins_over_the_preset_in_plan_and_load()
    {
        var folder = TinyFolder();
        // The tiny Jina tower with no task adapter applied, written as a component config.json would be.
        var settings = JinaConfig.Tiny with { DefaultLoraTask = null };
        File.WriteAllText(Path.Combine(new ModelFolder(folder).ClipModel, "config.json"), JsonSerializer.Serialize(settings));

        var plan = ModelPlan.For(folder, PipelineConfig.Tiny);
        using var pipeline = NewBiePipeline.Load(folder, PipelineConfig.Tiny, CPU, float32);

        Assert.True(plan.Ok, string.Join("\n", plan.Problems));
        Assert.Null(plan.Config.Jina.DefaultLoraTask);
        Assert.Null(pipeline.Config.Jina.DefaultLoraTask);
        Assert.Equal(plan.Components, pipeline.Plan!.Components);
        Assert.Contains("settings from clip_model/config.json", plan.Components.Single(c => c.Component == "clip_model").Summary);
        Assert.Contains("settings from the built-in preset (no config.json)", plan.Components.Single(c => c.Component == "transformer").Summary);
    }
}
