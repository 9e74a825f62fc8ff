using System.Text.Json;
using NewBie.Pipeline.Configs;

namespace NewBie.Pipeline.Tests.TextEncoders;

public sealed class ConfigTests
{
    [Fact]
    public void Released_gemma_text_config_reads_as_the_gemma3_4b_preset()
    {
        // The text part of google/gemma-3-4b-it config.json: everything else is a transformers default.
        var json = """
            {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3",
             "text_config": {"hidden_size": 2560, "intermediate_size": 10240, "model_type": "gemma3_text",
               "num_hidden_layers": 34, "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024},
             "vision_config": {"hidden_size": 1152}}
            """;
        Assert.Equal(GemmaConfig.Gemma3_4B, GemmaConfig.FromJson(json));
    }

    [Fact]
    public void Gemma3_4b_global_layers_are_every_sixth()
    {
        var c = GemmaConfig.Gemma3_4B;
        var global = Enumerable.Range(0, c.NumHiddenLayers).Where(i => !c.IsSlidingLayer(i));
        Assert.Equal([5, 11, 17, 23, 29], global);
        Assert.Equal(8.0, c.GlobalRopeScale);
    }

    [Fact]
    public void Explicit_layer_types_override_the_pattern()
    {
        var c = GemmaConfig.Tiny with { LayerTypes = ["full_attention", "sliding_attention", "sliding_attention"] };
        Assert.False(c.IsSlidingLayer(0));
        Assert.True(c.IsSlidingLayer(1));
    }

    [Fact]
    public void Legacy_rope_scaling_type_field_is_understood()
    {
        var c = GemmaConfig.FromJson("""{"rope_scaling": {"type": "linear", "factor": 4}}""");
        Assert.Equal(4.0, c.GlobalRopeScale);
    }

    [Fact]
    public void Presets_are_valid_and_tiny_sizes_fit_the_tiny_model()
    {
        GemmaConfig.Gemma3_4B.Validate();
        GemmaConfig.Tiny.Validate();
        JinaConfig.JinaClipV2.Validate();
        JinaConfig.Tiny.Validate();
        Assert.Equal(512, GemmaConfig.Tiny.VocabSize);
        Assert.Equal(512, JinaConfig.Tiny.VocabSize);
        Assert.Equal(64, GemmaConfig.Tiny.HiddenSize);
        Assert.Equal(64, JinaConfig.Tiny.HiddenSize);
        Assert.Contains(Enumerable.Range(0, GemmaConfig.Tiny.NumHiddenLayers - 1), i => !GemmaConfig.Tiny.IsSlidingLayer(i));
    }

    [Fact]
    public void Gemma_validate_names_the_numbers_that_disagree()
    {
        var ex = Assert.Throws<ArgumentException>(() => (GemmaConfig.Tiny with { NumAttentionHeads = 4, NumKeyValueHeads = 3 }).Validate());
        Assert.Contains("num_attention_heads 4", ex.Message);
        Assert.Contains("num_key_value_heads 3", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => (GemmaConfig.Tiny with { LayerTypes = ["full_attention"] }).Validate());
        Assert.Contains("1 entries", ex.Message);
        Assert.Contains("num_hidden_layers is 3", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => (GemmaConfig.Tiny with { NumHiddenLayers = 1 }).Validate());
        Assert.Contains("num_hidden_layers is 1", ex.Message);
    }

    [Fact]
    public void Gemma_encoder_constructor_validates_its_config()
    {
        var bad = GemmaConfig.Tiny with { HeadDim = 15 };
        var ex = Assert.Throws<ArgumentException>(() => new GemmaTextEncoder(bad, TorchSharp.torch.CPU, TorchSharp.torch.float32));
        Assert.Contains("head_dim 15", ex.Message);
    }

    /// <summary>
    /// The released jina-clip-v2 config.json (TestData/released, source in its README): the tower's sizes come from
    /// jina-embeddings-v3, its kwargs override the adapters to one task with alpha 4 and rank 4, so the merge scale is 1.
    /// </summary>
    [Fact]
    public void Released_jina_clip_config_reads_as_the_jina_clip_v2_preset()
    {
        var c = JinaConfig.Read(Path.Combine(Fixtures.RepositoryRoot, "NewBie.Pipeline.Tests", "TestData", "released", "clip_model", "config.json"));
        Assert.Equal(["retrieval.query"], c.LoraAdaptations);
        Assert.Equal((4.0, 4), (c.LoraAlpha, c.LoraRank));
        Assert.Equal(1.0, c.LoraScaling);
        Assert.Equal(0, c.LoraTaskIndex);
        Assert.Equal((1024, 24, 16, 250_002), (c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.VocabSize));
        Assert.Equal(JinaConfig.JinaClipV2 with { LoraAdaptations = c.LoraAdaptations }, c);
        Assert.Equal(JinaConfig.JinaClipV2.LoraAdaptations, c.LoraAdaptations);
    }

    [Fact]
    public void Jina_kwargs_without_adapter_fields_keep_the_jina_embeddings_v3_adapters()
    {
        // jina-clip-v2 builds its tower from the jina-embeddings-v3 config; kwargs only override.
        var c = JinaConfig.FromJson("""{"text_config": {"default_lora_task": "retrieval.query", "hf_model_config_kwargs": {"use_flash_attn": true}}}""");
        Assert.Equal(5, c.LoraAdaptations.Count);
        Assert.Equal(0.25, c.LoraScaling);
    }

    [Fact]
    public void Jina_text_config_without_a_task_applies_none()
    {
        var c = JinaConfig.FromJson("""{"text_config": {"default_lora_task": null}}""");
        Assert.Null(c.DefaultLoraTask);
        Assert.Equal(-1, c.LoraTaskIndex);
    }

    [Fact]
    public void Jina_validate_names_the_numbers_that_disagree()
    {
        var ex = Assert.Throws<ArgumentException>(() => (JinaConfig.Tiny with { HiddenSize = 66 }).Validate());
        Assert.Contains("hidden_size 66", ex.Message);
        Assert.Contains("num_attention_heads 4", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => (JinaConfig.Tiny with { DefaultLoraTask = "summarize" }).Validate());
        Assert.Contains("'summarize'", ex.Message);
        Assert.Contains("5 lora_adaptations", ex.Message);
    }

    [FixtureTheory("gemma3"), Trait("Category", "Parity")]
    [MemberData(nameof(Fixtures.Folders), "gemma3", MemberType = typeof(Fixtures))]
    public void Gemma_fixture_config_reads_its_hf_text_config(string folder)
    {
        var c = GemmaConfig.Read(Path.Combine(folder, "config.json"));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        var hf = doc.RootElement.GetProperty("hf_text_config");
        Assert.Equal(hf.GetProperty("hidden_size").GetInt32(), c.HiddenSize);
        Assert.Equal(hf.GetProperty("num_hidden_layers").GetInt32(), c.NumHiddenLayers);
        Assert.Equal(hf.GetProperty("query_pre_attn_scalar").GetInt32(), c.QueryPreAttnScalar);
        Assert.Equal(hf.GetProperty("sliding_window").GetInt32(), c.SlidingWindow);
        Assert.Equal(hf.GetProperty("rope_scaling").GetProperty("factor").GetDouble(), c.GlobalRopeScale);
        var full = hf.GetProperty("layer_types").EnumerateArray().Select((t, i) => (t.GetString(), i)).Where(p => p.Item1 == "full_attention").Select(p => p.i);
        Assert.Equal(full, Enumerable.Range(0, c.NumHiddenLayers).Where(i => !c.IsSlidingLayer(i)));
    }

    [FixtureTheory("jina"), Trait("Category", "Parity")]
    [MemberData(nameof(Fixtures.Folders), "jina", MemberType = typeof(Fixtures))]
    public void Jina_fixture_config_reads_its_hf_model_config_kwargs(string folder)
    {
        var c = JinaConfig.Read(Path.Combine(folder, "config.json"));
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        var text = doc.RootElement.GetProperty("text_config");
        var kwargs = text.GetProperty("hf_model_config_kwargs");
        Assert.Equal(kwargs.GetProperty("hidden_size").GetInt32(), c.HiddenSize);
        Assert.Equal(kwargs.GetProperty("num_hidden_layers").GetInt32(), c.NumHiddenLayers);
        Assert.Equal(kwargs.GetProperty("rotary_emb_base").GetDouble(), c.RotaryEmbBase);
        Assert.Equal(kwargs.GetProperty("lora_adaptations").EnumerateArray().Select(e => e.GetString()), c.LoraAdaptations);
        Assert.Equal(text.GetProperty("default_lora_task").GetString(), c.DefaultLoraTask);
        Assert.Equal(kwargs.GetProperty("lora_alpha").GetDouble() / kwargs.GetProperty("lora_rank").GetDouble(), c.LoraScaling);
        Assert.Equal(doc.RootElement.GetProperty("lora_scaling").GetDouble(), c.LoraScaling);
    }
}
