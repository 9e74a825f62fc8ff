using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Modules;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace NewBie.Pipeline;

/// <summary>
/// Gemma-3 text decoder as NewBie uses it: token ids and mask [B, L] → <c>hidden_states[-2]</c> [B, L, hidden],
/// the raw residual stream after layer N-2 (model-spec §2.1). Only layers 0 … N-2 exist: the last layer, the final
/// norm, the LM head and the vision tower are never built, and their checkpoint tensors are skipped at load.
/// Values at padded positions are finite but meaningless; consumers drop them with the mask.
/// </summary>
public sealed class GemmaTextEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly EmptyEmbedding embed_tokens;
    private readonly ModuleList<Gemma3DecoderLayer> layers;

    public GemmaConfig Config { get; }
    /// <summary>Where the weights are now: read from them, so the encoder can be moved with <c>to(...)</c> between encodes.</summary>
    public Device Device => embed_tokens.Weight.device;
    public ScalarType DType => embed_tokens.Weight.dtype;

    public GemmaTextEncoder(GemmaConfig config, Device device, ScalarType dtype) : base(nameof(GemmaTextEncoder))
    {
        config.Validate();
        Config = config;
        embed_tokens = new EmptyEmbedding(config.VocabSize, config.HiddenSize, device, dtype);
        layers = new ModuleList<Gemma3DecoderLayer>(
            Enumerable.Range(0, config.NumHiddenLayers - 1).Select(_ => new Gemma3DecoderLayer(config, device, dtype)).ToArray());
        RegisterComponents();
    }

    /// <summary>input_ids and attention_mask: int64 [B, L], right-padded, 1 = real token. Returns [B, L, hidden] in the model dtype.</summary>
    public override Tensor forward(Tensor input_ids, Tensor attention_mask) => Run(input_ids, attention_mask, collect: null);

    /// <summary>
    /// The Hugging Face <c>hidden_states</c> entries this encoder computes: [0] = scaled embeddings, [i] = output of
    /// layer i-1, the last one being <c>hidden_states[-2]</c>.
    /// </summary>
    public IReadOnlyList<Tensor> HiddenStates(Tensor input_ids, Tensor attention_mask)
    {
        var states = new List<Tensor>();
        Run(input_ids, attention_mask, states).Dispose();
        return states;
    }

    private Tensor Run(Tensor input_ids, Tensor attention_mask, List<Tensor>? collect)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ids = input_ids.to(int64, Device);
        var mask = attention_mask.to(Device);
        var length = ids.shape[1];

        // Hugging Face multiplies by sqrt(hidden) cast to the weight dtype (50.5 rather than 50.596 in bf16).
        var scale = torch.tensor(Math.Sqrt(Config.HiddenSize), dtype: DType, device: Device);
        var x = embed_tokens.forward(ids) * scale;
        collect?.Add(x.alias().MoveToOuterDisposeScope());

        var local = RotateHalfRope.Tables(length, Config.HeadDim, Config.RopeLocalBaseFreq, 1.0, Device);
        var global = RotateHalfRope.Tables(length, Config.HeadDim, Config.RopeTheta, Config.GlobalRopeScale, Device);
        var slidingMask = AttentionAllowed(mask, Config.SlidingWindow);
        var fullMask = AttentionAllowed(mask, slidingWindow: null);

        for (int i = 0; i < layers.Count; i++)
        {
            var sliding = Config.IsSlidingLayer(i);
            var (cos, sin) = sliding ? local : global;
            x = layers[i].forward(x, cos, sin, sliding ? slidingMask : fullMask);
            collect?.Add(x.alias().MoveToOuterDisposeScope());
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Which keys each query may attend, bool [B, 1, L(query), L(key)]: causal, key is a real token, and for sliding
    /// layers query - key &lt; window. The diagonal is always allowed: a padded query far past the last real token
    /// has no other key in its window, and a fully masked row makes SDPA return NaN, which would then leak into
    /// real tokens through 0 × NaN in the next layer's value product.
    /// </summary>
    internal static Tensor AttentionAllowed(Tensor attentionMask, int? slidingWindow)
    {
        using var scope = torch.NewDisposeScope();
        var length = attentionMask.shape[1];
        var pos = torch.arange(length, dtype: int64, device: attentionMask.device);
        var query = pos.unsqueeze(1);
        var key = pos.unsqueeze(0);
        var allowed = key.le(query);
        if (slidingWindow is { } w) allowed = allowed.logical_and((query - key).lt(w));
        var keyReal = attentionMask.ne(0).unsqueeze(1);                       // [B, 1, L(key)]
        var result = allowed.unsqueeze(0).logical_and(keyReal).logical_or(key.eq(query).unsqueeze(0));
        return result.unsqueeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Builds the encoder on <paramref name="device"/> in <paramref name="dtype"/> and loads a checkpoint into it (strict).
    /// <paramref name="folderOrFile"/>: what <see cref="Checkpoint.Open"/> accepts (a .safetensors file, an .index.json,
    /// or a folder holding one of them); <see cref="ModelFolder"/> picks the released file.
    /// </summary>
    public static GemmaTextEncoder Load(string folderOrFile, GemmaConfig config, Device device, ScalarType dtype)
    {
        var model = new GemmaTextEncoder(config, device, dtype);
        try
        {
            using var checkpoint = Checkpoint.Open(folderOrFile);
            WeightLoader.Load(model, checkpoint, KeyMap(checkpoint, config), "Gemma-3 text encoder");
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Where the text model sits in each released layout (fixture README "Key names"), most specific first.</summary>
    internal static readonly string[] KnownPrefixes = ["language_model.model.", "model.language_model.", "language_model.", "model.", ""];

    /// <summary>Parts of multimodal or repacked checkpoints that text encoding never uses.</summary>
    private static readonly string[] UnusedParts =
        ["vision_tower.", "multi_modal_projector.", "lm_head.", "language_model.lm_head.",
         "model.vision_tower.", "model.multi_modal_projector.", "spiece_model"];

    /// <summary>
    /// Maps checkpoint keys to module keys: detects the layout's prefix from where <c>embed_tokens.weight</c> is,
    /// strips it, and skips the vision tower, projector, LM head, final norm and last layer. Anything else that does
    /// not match the module stays and is reported as unexpected.
    /// </summary>
    internal static WeightLoader.KeyMap KeyMap(Checkpoint checkpoint, GemmaConfig config)
    {
        var prefix = KnownPrefixes.FirstOrDefault(p => checkpoint.Contains(p + "embed_tokens.weight"))
            ?? throw new WeightLoadException($"{checkpoint.Source}: no embed_tokens.weight under any known Gemma-3 prefix ({string.Join(", ", KnownPrefixes.Where(p => p.Length > 0))} or none)");
        var lastLayer = $"layers.{config.NumHiddenLayers - 1}.";
        return key =>
        {
            if (UnusedParts.Any(key.StartsWith)) return null;
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) return key;
            var name = key[prefix.Length..];
            return name == "norm.weight" || name.StartsWith(lastLayer, StringComparison.Ordinal) ? null : name;
        };
    }

    /// <summary>
    /// The built-in tiny model's weights: deterministic for a seed on every device (<see cref="SeededRandom.Initialise"/>).
    /// </summary>
    public static GemmaTextEncoder CreateRandom(GemmaConfig config, long seed, Device device, ScalarType dtype)
    {
        var model = new GemmaTextEncoder(config, device, dtype);
        // Norm weights act as (1 + w), so small values around 0; matrices scaled to keep activations O(1).
        SeededRandom.Initialise(model, seed, (name, tensor, noise) => noise * (
            name.EndsWith("norm.weight", StringComparison.Ordinal) ? 0.1
            : name == "embed_tokens.weight" ? 1.0 / Math.Sqrt(config.HiddenSize)
            : 1.0 / Math.Sqrt(tensor.shape[^1])));
        model.eval();
        return model;
    }
}

/// <summary>Gemma RMSNorm: <c>x · rsqrt(mean(x²) + eps) · (1 + w)</c> in float32, cast back.</summary>
internal sealed class GemmaRmsNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly double _eps;

    public GemmaRmsNorm(long dim, double eps, Device device, ScalarType dtype) : base(nameof(GemmaRmsNorm))
    {
        _eps = eps;
        weight = new Parameter(torch.zeros(dim, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var xf = x.to(float32);
        var y = xf * (xf.pow(2).mean([-1], keepdim: true) + _eps).rsqrt() * (weight.to(float32) + 1);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}

internal sealed class Gemma3Attention : nn.Module
{
    private readonly EmptyLinear q_proj;
    private readonly EmptyLinear k_proj;
    private readonly EmptyLinear v_proj;
    private readonly EmptyLinear o_proj;
    private readonly GemmaRmsNorm q_norm;
    private readonly GemmaRmsNorm k_norm;
    private readonly int _heads;
    private readonly int _kvHeads;
    private readonly int _headDim;
    private readonly double _queryScale;

    public Gemma3Attention(GemmaConfig c, Device device, ScalarType dtype) : base(nameof(Gemma3Attention))
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        // SDPA divides by sqrt(head_dim); Gemma wants query_pre_attn_scalar^-0.5 instead, so q carries the ratio.
        _queryScale = Math.Sqrt(c.HeadDim) / Math.Sqrt(c.QueryPreAttnScalar);
        q_proj = new EmptyLinear(c.HiddenSize, c.NumAttentionHeads * c.HeadDim, c.AttentionBias, device, dtype);
        k_proj = new EmptyLinear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.AttentionBias, device, dtype);
        v_proj = new EmptyLinear(c.HiddenSize, c.NumKeyValueHeads * c.HeadDim, c.AttentionBias, device, dtype);
        o_proj = new EmptyLinear(c.NumAttentionHeads * c.HeadDim, c.HiddenSize, c.AttentionBias, device, dtype);
        q_norm = new GemmaRmsNorm(c.HeadDim, c.RmsNormEps, device, dtype);
        k_norm = new GemmaRmsNorm(c.HeadDim, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, L, hidden]; cos/sin [L, head_dim] float32; allowed bool [B, 1, L, L].</summary>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor allowed)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], l = x.shape[1];
        // (B, L, H·D) -> (B, H, L, D)
        var q = q_proj.forward(x).view(b, l, _heads, _headDim).transpose(1, 2);
        var k = k_proj.forward(x).view(b, l, _kvHeads, _headDim).transpose(1, 2);
        var v = v_proj.forward(x).view(b, l, _kvHeads, _headDim).transpose(1, 2);
        q = RotateHalfRope.Apply(q_norm.forward(q), cos, sin, _queryScale);
        k = RotateHalfRope.Apply(k_norm.forward(k), cos, sin);
        // GQA: query head h reads kv head h / (H / KV) — HF repeat_kv order.
        var groups = _heads / _kvHeads;
        if (groups > 1)
        {
            k = k.repeat_interleave(groups, dim: 1);
            v = v.repeat_interleave(groups, dim: 1);
        }
        // SDPA's softmax accumulates in float32 for bf16 inputs in every libtorch backend.
        var o = F.scaled_dot_product_attention(q, k, v, attn_mask: allowed);
        o = o.transpose(1, 2).reshape(b, l, _heads * _headDim);
        return o_proj.forward(o).MoveToOuterDisposeScope();
    }
}

internal sealed class Gemma3MLP : nn.Module<Tensor, Tensor>
{
    private readonly EmptyLinear gate_proj;
    private readonly EmptyLinear up_proj;
    private readonly EmptyLinear down_proj;

    public Gemma3MLP(GemmaConfig c, Device device, ScalarType dtype) : base(nameof(Gemma3MLP))
    {
        gate_proj = new EmptyLinear(c.HiddenSize, c.IntermediateSize, hasBias: false, device, dtype);
        up_proj = new EmptyLinear(c.HiddenSize, c.IntermediateSize, hasBias: false, device, dtype);
        down_proj = new EmptyLinear(c.IntermediateSize, c.HiddenSize, hasBias: false, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = F.gelu(gate_proj.forward(x), GELU.Approximate.tanh) * up_proj.forward(x);
        return down_proj.forward(h).MoveToOuterDisposeScope();
    }
}

/// <summary>One decoder layer with Gemma-3's four "sandwich" norms around attention and MLP.</summary>
internal sealed class Gemma3DecoderLayer : nn.Module
{
    private readonly Gemma3Attention self_attn;
    private readonly Gemma3MLP mlp;
    private readonly GemmaRmsNorm input_layernorm;
    private readonly GemmaRmsNorm post_attention_layernorm;
    private readonly GemmaRmsNorm pre_feedforward_layernorm;
    private readonly GemmaRmsNorm post_feedforward_layernorm;

    public Gemma3DecoderLayer(GemmaConfig c, Device device, ScalarType dtype) : base(nameof(Gemma3DecoderLayer))
    {
        self_attn = new Gemma3Attention(c, device, dtype);
        mlp = new Gemma3MLP(c, device, dtype);
        input_layernorm = new GemmaRmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        post_attention_layernorm = new GemmaRmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        pre_feedforward_layernorm = new GemmaRmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        post_feedforward_layernorm = new GemmaRmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor allowed)
    {
        using var scope = torch.NewDisposeScope();
        var h = x + post_attention_layernorm.forward(self_attn.forward(input_layernorm.forward(x), cos, sin, allowed));
        var y = h + post_feedforward_layernorm.forward(mlp.forward(pre_feedforward_layernorm.forward(h)));
        return y.MoveToOuterDisposeScope();
    }
}
