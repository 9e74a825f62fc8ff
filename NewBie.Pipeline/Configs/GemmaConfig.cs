using System.Text.Json;
using System.Text.Json.Serialization;

namespace NewBie.Pipeline.Configs;

/// <summary>
/// Gemma-3 text decoder hyper-parameters. Property names are the Hugging Face <c>Gemma3TextConfig</c> field names and
/// the initial values are that class's defaults, so a sparse released <c>config.json</c> (<c>text_config</c>) reads
/// exactly as transformers reads it. model-spec §2.1.
/// </summary>
public sealed record GemmaConfig
{
    public const string SlidingAttention = "sliding_attention";
    public const string FullAttention = "full_attention";

    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 262_208;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 2304;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 9216;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 26;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 8;
    [JsonPropertyName("num_key_value_heads")] public int NumKeyValueHeads { get; init; } = 4;
    [JsonPropertyName("head_dim")] public int HeadDim { get; init; } = 256;
    /// <summary>Attention logits are scaled by <c>query_pre_attn_scalar ** -0.5</c>, not by <c>head_dim ** -0.5</c>.</summary>
    [JsonPropertyName("query_pre_attn_scalar")] public double QueryPreAttnScalar { get; init; } = 256;
    [JsonPropertyName("hidden_activation")] public string HiddenActivation { get; init; } = "gelu_pytorch_tanh";
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEps { get; init; } = 1e-6;
    /// <summary>RoPE base of the global (full-attention) layers.</summary>
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 1_000_000;
    /// <summary>RoPE base of the sliding-window layers (never scaled).</summary>
    [JsonPropertyName("rope_local_base_freq")] public double RopeLocalBaseFreq { get; init; } = 10_000;
    /// <summary>Applies to the global layers only.</summary>
    [JsonPropertyName("rope_scaling")] public GemmaRopeScaling? RopeScaling { get; init; }
    [JsonPropertyName("sliding_window")] public int SlidingWindow { get; init; } = 4096;
    /// <summary>Used when <see cref="LayerTypes"/> is absent: every pattern-th layer is global.</summary>
    [JsonPropertyName("sliding_window_pattern")] public int SlidingWindowPattern { get; init; } = 6;
    [JsonPropertyName("layer_types")] public IReadOnlyList<string>? LayerTypes { get; init; }
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("attn_logit_softcapping")] public double? AttnLogitSoftcapping { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 131_072;
    [JsonPropertyName("pad_token_id")] public int? PadTokenId { get; init; } = 0;
    [JsonPropertyName("eos_token_id")] public int? EosTokenId { get; init; } = 1;
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; } = 2;

    /// <summary>google/gemma-3-4b-it text config (model-spec §2.1 table).</summary>
    public static GemmaConfig Gemma3_4B { get; } = new()
    {
        VocabSize = 262_208,
        HiddenSize = 2560,
        IntermediateSize = 10_240,
        NumHiddenLayers = 34,
        NumAttentionHeads = 8,
        NumKeyValueHeads = 4,
        HeadDim = 256,
        QueryPreAttnScalar = 256,
        SlidingWindow = 1024,
        SlidingWindowPattern = 6,
        RopeScaling = new GemmaRopeScaling { RopeType = "linear", Factor = 8 },
    };

    /// <summary>
    /// The built-in tiny model: vocab 512 (the tiny tokenizers), hidden 64 (the tiny NextDiT's cap_feat_dim),
    /// 3 layers with layer 1 global so that both attention kinds run among the two layers the encoder executes.
    /// </summary>
    public static GemmaConfig Tiny { get; } = new()
    {
        VocabSize = 512,
        HiddenSize = 64,
        IntermediateSize = 128,
        NumHiddenLayers = 3,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 16,
        QueryPreAttnScalar = 16,
        SlidingWindow = 8,
        SlidingWindowPattern = 2,
        MaxPositionEmbeddings = 512,
        RopeScaling = new GemmaRopeScaling { RopeType = "linear", Factor = 8 },
    };

    public bool IsSlidingLayer(int layer) =>
        LayerTypes is { } types ? types[layer] == SlidingAttention : (layer + 1) % SlidingWindowPattern != 0;

    /// <summary>Linear RoPE scaling factor of the global layers (1 when unscaled).</summary>
    public double GlobalRopeScale => RopeScaling is { } s && s.Kind == "linear" ? s.Factor : 1.0;

    public void Validate()
    {
        Positive(VocabSize, "vocab_size");
        Positive(HiddenSize, "hidden_size");
        Positive(IntermediateSize, "intermediate_size");
        Positive(NumAttentionHeads, "num_attention_heads");
        Positive(NumKeyValueHeads, "num_key_value_heads");
        Positive(HeadDim, "head_dim");
        Positive(SlidingWindow, "sliding_window");
        Positive(SlidingWindowPattern, "sliding_window_pattern");
        // hidden_states[-2] is the output of layer N-2, so at least two layers must exist.
        if (NumHiddenLayers < 2)
            throw new ArgumentException($"num_hidden_layers is {NumHiddenLayers}; the penultimate hidden state needs at least 2 layers");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new ArgumentException($"num_attention_heads {NumAttentionHeads} is not a multiple of num_key_value_heads {NumKeyValueHeads}");
        if (HeadDim % 2 != 0)
            throw new ArgumentException($"head_dim {HeadDim} must be even for rotate-half RoPE");
        if (!(QueryPreAttnScalar > 0))
            throw new ArgumentException($"query_pre_attn_scalar {QueryPreAttnScalar} must be positive");
        if (!(RmsNormEps > 0))
            throw new ArgumentException($"rms_norm_eps {RmsNormEps} must be positive");
        if (!(RopeTheta > 0) || !(RopeLocalBaseFreq > 0))
            throw new ArgumentException($"rope_theta {RopeTheta} and rope_local_base_freq {RopeLocalBaseFreq} must be positive");
        if (HiddenActivation != "gelu_pytorch_tanh")
            throw new ArgumentException($"hidden_activation '{HiddenActivation}' is not supported (Gemma-3 uses gelu_pytorch_tanh)");
        if (AttnLogitSoftcapping is not null)
            throw new ArgumentException($"attn_logit_softcapping {AttnLogitSoftcapping} is not supported (Gemma-3 has none)");
        if (RopeScaling is { } s)
        {
            if (s.Kind is not ("linear" or "default"))
                throw new ArgumentException($"rope_scaling type '{s.Kind}' is not supported (Gemma-3 uses linear)");
            if (s.Kind == "linear" && !(s.Factor > 0))
                throw new ArgumentException($"rope_scaling factor {s.Factor} must be positive");
        }
        if (LayerTypes is { } types)
        {
            if (types.Count != NumHiddenLayers)
                throw new ArgumentException($"layer_types has {types.Count} entries but num_hidden_layers is {NumHiddenLayers}");
            for (int i = 0; i < types.Count; i++)
                if (types[i] is not (SlidingAttention or FullAttention))
                    throw new ArgumentException($"layer_types[{i}] is '{types[i]}', expected '{SlidingAttention}' or '{FullAttention}'");
        }
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"{name} is {value}; it must be positive");
    }

    /// <summary>
    /// Reads a config.json: a Gemma-3 multimodal config (its <c>text_config</c>), a parity-fixture config
    /// (its <c>hf_text_config</c>) or a bare text config. Missing fields take the transformers defaults.
    /// </summary>
    public static GemmaConfig Read(string configJsonPath) => FromJson(File.ReadAllText(configJsonPath));

    public static GemmaConfig FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        var text = root.TryGetProperty("text_config", out var t) && t.ValueKind == JsonValueKind.Object ? t
            : root.TryGetProperty("hf_text_config", out var f) && f.ValueKind == JsonValueKind.Object ? f
            : root;
        var config = text.Deserialize<GemmaConfig>() ?? throw new ArgumentException("config.json is empty");
        config.Validate();
        return config;
    }
}

/// <summary>Hugging Face <c>rope_scaling</c>; older configs spell the kind <c>type</c>.</summary>
public sealed record GemmaRopeScaling
{
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    [JsonPropertyName("type")] public string? Type { get; init; }
    [JsonPropertyName("factor")] public double Factor { get; init; } = 1.0;

    [JsonIgnore] public string Kind => RopeType ?? Type ?? "default";
}
