using System.Text.Json;
using System.Text.Json.Serialization;

namespace NewBie.Pipeline.Configs;

/// <summary>
/// Jina CLIP v2 text tower (jina-embeddings-v3 XLM-RoBERTa) hyper-parameters. Property names are the
/// <c>XLMRobertaFlashConfig</c> field names found in <c>text_config.hf_model_config_kwargs</c>, plus
/// <c>default_lora_task</c> from <c>text_config</c>. Initial values are the jina-embeddings-v3 config that
/// jina-clip-v2 builds its tower from, so a sparse kwargs object reads as the released model. model-spec §2.2.
/// </summary>
public sealed record JinaConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 250_002;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 1024;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 24;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 16;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 4096;
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 1;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-5;
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; } = 1;
    [JsonPropertyName("bos_token_id")] public int BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id")] public int EosTokenId { get; init; } = 2;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 8194;
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "rotary";
    [JsonPropertyName("rotary_emb_base")] public double RotaryEmbBase { get; init; } = 20_000;
    [JsonPropertyName("lora_adaptations")] public IReadOnlyList<string> LoraAdaptations { get; init; } =
        ["retrieval.query", "retrieval.passage", "separation", "classification", "text-matching"];
    [JsonPropertyName("lora_rank")] public int LoraRank { get; init; } = 4;
    [JsonPropertyName("lora_alpha")] public double LoraAlpha { get; init; } = 1;
    /// <summary>The task adapter merged at load when the checkpoint stores adapters; null loads the base weights only.</summary>
    [JsonPropertyName("default_lora_task")] public string? DefaultLoraTask { get; init; } = "retrieval.query";

    /// <summary>
    /// jinaai/jina-clip-v2 text tower as its released config.json sets it (a public copy is test data:
    /// NewBie.Pipeline.Tests/TestData/released/clip_model/config.json): the jina-embeddings-v3 sizes, and
    /// <c>hf_model_config_kwargs</c> overriding the adapters to the one task <c>retrieval.query</c> with
    /// <c>lora_alpha</c> 4 and <c>lora_rank</c> 4 (scale 1). Only a fallback: loading reads clip_model/config.json.
    /// </summary>
    public static JinaConfig JinaClipV2 { get; } = new() { LoraAdaptations = ["retrieval.query"], LoraAlpha = 4, LoraRank = 4 };

    /// <summary>The built-in tiny model: vocab 512 (the tiny tokenizers), hidden 64 (the tiny NextDiT's clip_text_dim).</summary>
    public static JinaConfig Tiny { get; } = new()
    {
        VocabSize = 512,
        HiddenSize = 64,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        IntermediateSize = 128,
        MaxPositionEmbeddings = 514,
    };

    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>LoRA delta scale <c>alpha / rank</c>.</summary>
    public double LoraScaling => LoraAlpha / LoraRank;

    /// <summary>Index of <see cref="DefaultLoraTask"/> in the adapter stacks, or -1 when no task is applied.</summary>
    public int LoraTaskIndex => DefaultLoraTask is null ? -1 : LoraAdaptations.ToList().IndexOf(DefaultLoraTask);

    public void Validate()
    {
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(NumHiddenLayers, "num_hidden_layers");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(IntermediateSize, "intermediate_size");
        Positive(TypeVocabSize, "type_vocab_size");
        Positive(LoraRank, "lora_rank");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException($"hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"head dim {HeadDim} (hidden_size {HiddenSize} / num_attention_heads {NumAttentionHeads}) must be even for rotate-half RoPE");
        if (PositionEmbeddingType != "rotary")
            throw new ArgumentException($"position_embedding_type '{PositionEmbeddingType}' is not supported (jina-embeddings-v3 uses rotary)");
        if (HiddenAct != "gelu")
            throw new ArgumentException($"hidden_act '{HiddenAct}' is not supported (jina-embeddings-v3 uses exact gelu)");
        if (!(RotaryEmbBase > 0))
            throw new ArgumentException($"rotary_emb_base {RotaryEmbBase} must be positive");
        if (!(LayerNormEps > 0))
            throw new ArgumentException($"layer_norm_eps {LayerNormEps} must be positive");
        if (PadTokenId < 0 || PadTokenId >= VocabSize)
            throw new ArgumentException($"pad_token_id {PadTokenId} is outside the vocabulary of {VocabSize}");
        if (DefaultLoraTask is not null && LoraTaskIndex < 0)
            throw new ArgumentException($"default_lora_task '{DefaultLoraTask}' is not one of the {LoraAdaptations.Count} lora_adaptations ({string.Join(", ", LoraAdaptations)})");
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} is {value}; it must be positive");
    }

    /// <summary>
    /// Reads a config.json: a jina-clip-v2 config (<c>text_config.hf_model_config_kwargs</c> and
    /// <c>text_config.default_lora_task</c>; the parity fixture has the same shape) or a bare
    /// jina-embeddings-v3 / XLM-RoBERTa config. Missing fields take the jina-embeddings-v3 values.
    /// </summary>
    public static JinaConfig Read(string configJsonPath) => FromJson(File.ReadAllText(configJsonPath));

    public static JinaConfig FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        JinaConfig config;
        if (root.TryGetProperty("text_config", out var text) && text.ValueKind == JsonValueKind.Object)
        {
            config = text.TryGetProperty("hf_model_config_kwargs", out var kw) && kw.ValueKind == JsonValueKind.Object
                ? kw.Deserialize<JinaConfig>()! : new JinaConfig();
            if (text.TryGetProperty("default_lora_task", out var task))
                config = config with { DefaultLoraTask = task.ValueKind == JsonValueKind.Null ? null : task.GetString() };
        }
        else
        {
            config = root.Deserialize<JinaConfig>() ?? throw new ArgumentException("config.json is empty");
        }
        config.Validate();
        return config;
    }
}
