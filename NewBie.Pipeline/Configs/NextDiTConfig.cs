using System.Text.Json;
using System.Text.Json.Serialization;

namespace NewBie.Pipeline.Configs;

/// <summary>
/// Hyper-parameters of NextDiT_CLIP (model-spec §3.1), named like the released <c>transformer/config.json</c>.
/// Derived sizes (head dim, FFN width, AdaLN width) follow upstream's constructor arithmetic.
/// </summary>
public sealed record NextDiTConfig
{
    [JsonPropertyName("patch_size")] public int PatchSize { get; init; } = 2;
    [JsonPropertyName("in_channels")] public int InChannels { get; init; } = 16;
    [JsonPropertyName("dim")] public int Dim { get; init; } = 2304;
    [JsonPropertyName("n_layers")] public int NLayers { get; init; } = 36;
    [JsonPropertyName("n_refiner_layers")] public int NRefinerLayers { get; init; } = 2;
    [JsonPropertyName("n_heads")] public int NHeads { get; init; } = 24;
    [JsonPropertyName("n_kv_heads")] public int NKvHeads { get; init; } = 8;
    [JsonPropertyName("multiple_of")] public int MultipleOf { get; init; } = 256;
    [JsonPropertyName("ffn_dim_multiplier")] public double? FfnDimMultiplier { get; init; }
    [JsonPropertyName("norm_eps")] public double NormEps { get; init; } = 1e-5;
    [JsonPropertyName("qk_norm")] public bool QkNorm { get; init; } = true;
    [JsonPropertyName("cap_feat_dim")] public int CapFeatDim { get; init; } = 2560;
    [JsonPropertyName("axes_dims")] public int[] AxesDims { get; init; } = [32, 32, 32];
    [JsonPropertyName("axes_lens")] public int[] AxesLens { get; init; } = [1024, 512, 512];
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("clip_text_dim")] public int ClipTextDim { get; init; } = 1024;

    /// <summary>The released NewBie-image-Exp0.1 transformer (NextDiT_3B_GQA_patch2_Adaln_Refiner_WHIT_CLIP).</summary>
    public static NextDiTConfig NewBie3B { get; } = new();

    /// <summary>
    /// The built-in tiny model: same structure, small sizes. cap_feat_dim and clip_text_dim equal the hidden
    /// sizes of the tiny Gemma and tiny Jina encoders, whose outputs feed it.
    /// </summary>
    public static NextDiTConfig Tiny { get; } = new()
    {
        Dim = 64,
        NLayers = 2,
        NRefinerLayers = 1,
        NHeads = 4,
        NKvHeads = 2,
        MultipleOf = 32,
        CapFeatDim = 64,
        AxesDims = [4, 6, 6],
        ClipTextDim = 64,
    };

    [JsonIgnore] public int HeadDim => Dim / NHeads;

    /// <summary>SwiGLU width: 4·dim, times the optional multiplier, rounded up to multiple_of (upstream FeedForward).</summary>
    [JsonIgnore]
    public int FfnHiddenDim
    {
        get
        {
            var hidden = 4 * Dim;
            if (FfnDimMultiplier is { } m) hidden = (int)(m * hidden);
            return MultipleOf * ((hidden + MultipleOf - 1) / MultipleOf);
        }
    }

    /// <summary>Width of the time embedding and of every AdaLN conditioning vector: min(dim, 1024).</summary>
    [JsonIgnore] public int AdaLnDim => Math.Min(Dim, 1024);

    /// <summary>
    /// Dense FLOPs of one forward of one sample (model-spec §10): 2 per multiply-add of qkv, out and SwiGLU for every
    /// token of every block, plus 4·S²·dim for attention (QKᵀ and PV) per block; the main blocks see S = L + N, the
    /// noise refiner the N image tokens, the context refiner the L caption tokens. Norms, softmax and the small
    /// embeddings are left out. Used for effective-throughput figures.
    /// </summary>
    public double ForwardFlops(long captionTokens, long imageTokens)
    {
        var macsPerToken = (double)Dim * (NHeads + 2 * NKvHeads) * HeadDim + (double)Dim * Dim + 3.0 * Dim * FfnHiddenDim;
        double Blocks(int count, long s) => count * (2 * s * macsPerToken + 4.0 * s * s * Dim);
        return Blocks(NLayers, captionTokens + imageTokens) + Blocks(NRefinerLayers, imageTokens) + Blocks(NRefinerLayers, captionTokens);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the offending numbers.</summary>
    public void Validate()
    {
        static void Positive(string name, double value)
        {
            if (!(value > 0)) throw new ArgumentException($"NextDiT {name} must be positive, got {value}");
        }
        Positive("patch_size", PatchSize);
        Positive("in_channels", InChannels);
        Positive("dim", Dim);
        Positive("n_layers", NLayers);
        Positive("n_heads", NHeads);
        Positive("n_kv_heads", NKvHeads);
        Positive("multiple_of", MultipleOf);
        Positive("norm_eps", NormEps);
        Positive("cap_feat_dim", CapFeatDim);
        Positive("clip_text_dim", ClipTextDim);
        Positive("rope_theta", RopeTheta);
        if (NRefinerLayers < 0) throw new ArgumentException($"NextDiT n_refiner_layers must not be negative, got {NRefinerLayers}");
        if (Dim % NHeads != 0) throw new ArgumentException($"NextDiT dim {Dim} is not divisible by n_heads {NHeads}");
        if (NHeads % NKvHeads != 0) throw new ArgumentException($"NextDiT n_heads {NHeads} is not divisible by n_kv_heads {NKvHeads}");
        if (!QkNorm) throw new ArgumentException("NextDiT qk_norm = false is not supported: every released NewBie model normalises q and k");
        if (AxesDims.Length == 0 || AxesDims.Length != AxesLens.Length)
            throw new ArgumentException($"NextDiT axes_dims ({AxesDims.Length} axes) and axes_lens ({AxesLens.Length} axes) must name the same axes");
        if (AxesDims.Any(d => d <= 0 || d % 2 != 0))
            throw new ArgumentException($"NextDiT axes_dims [{string.Join(", ", AxesDims)}] must be positive and even (RoPE rotates pairs)");
        if (AxesLens.Any(l => l <= 0)) throw new ArgumentException($"NextDiT axes_lens [{string.Join(", ", AxesLens)}] must be positive");
        if (AxesDims.Sum() != HeadDim)
            throw new ArgumentException($"NextDiT axes_dims sum to {AxesDims.Sum()} but the head dim is {HeadDim} (dim {Dim} / n_heads {NHeads})");
        if (FfnDimMultiplier is <= 0) throw new ArgumentException($"NextDiT ffn_dim_multiplier must be positive, got {FfnDimMultiplier}");
    }

    /// <summary>
    /// Reads a config.json: the released <c>transformer/config.json</c> (unknown keys such as <c>_class_name</c> are
    /// ignored) or a fixture's config.json, whose hyper-parameters sit under <c>"model"</c>.
    /// </summary>
    public static NextDiTConfig Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = doc.RootElement.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.Object ? model : doc.RootElement;
        var config = root.Deserialize<NextDiTConfig>() ?? throw new InvalidDataException($"{path}: empty NextDiT config");
        config.Validate();
        return config;
    }
}
