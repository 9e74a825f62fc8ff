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
/// Jina CLIP v2 text tower as NewBie uses it (<c>get_text_features</c>): the jina-embeddings-v3 XLM-RoBERTa encoder
/// (RoPE, post-LN, fused Wqkv), mean-pooled over real tokens, identity projection, no normalisation
/// (model-spec §2.2). token ids and mask [B, L] → [B, hidden]. The module tree is the checkpoint's
/// <c>text_model.transformer.roberta</c> subtree.
/// </summary>
public sealed class JinaTextEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly XLMRobertaEmbeddings embeddings;
    private readonly FloatLayerNorm emb_ln;
    private readonly XLMRobertaEncoder encoder;

    public JinaConfig Config { get; }
    /// <summary>Where the weights are now: read from them, so the encoder can be moved with <c>to(...)</c> between encodes.</summary>
    public Device Device => embeddings.Weight.device;
    public ScalarType DType => embeddings.Weight.dtype;

    public JinaTextEncoder(JinaConfig config, Device device, ScalarType dtype) : base(nameof(JinaTextEncoder))
    {
        config.Validate();
        Config = config;
        embeddings = new XLMRobertaEmbeddings(config, device, dtype);
        emb_ln = new FloatLayerNorm(config.HiddenSize, config.LayerNormEps, device, dtype);
        encoder = new XLMRobertaEncoder(config, device, dtype);
        RegisterComponents();
    }

    /// <summary>input_ids and attention_mask: int64 [B, L], 1 = real token (BOS and EOS included). Returns the pooled [B, hidden] in the model dtype.</summary>
    public override Tensor forward(Tensor input_ids, Tensor attention_mask)
    {
        using var scope = torch.NewDisposeScope();
        var (_, pooled) = Encode(input_ids, attention_mask);
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary>Per-token output of the last block [B, L, hidden] and its masked mean [B, hidden].</summary>
    public (Tensor LastHiddenState, Tensor Pooled) Encode(Tensor input_ids, Tensor attention_mask)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var ids = input_ids.to(int64, Device);
        var mask = attention_mask.to(Device);
        var x = emb_ln.forward(embeddings.forward(ids));
        var (cos, sin) = RotateHalfRope.Tables(ids.shape[1], Config.HeadDim, Config.RotaryEmbBase, 1.0, Device);
        var keyReal = mask.ne(0)[TensorIndex.Colon, TensorIndex.None, TensorIndex.None, TensorIndex.Colon];   // [B, 1, 1, L]
        x = encoder.forward(x, cos, sin, keyReal);
        var m = mask.to(float32).unsqueeze(-1);
        var pooled = ((x.to(float32) * m).sum(1) / m.sum(1)).to(DType);
        return (x.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Builds the tower on <paramref name="device"/> in <paramref name="dtype"/> and loads a checkpoint into it (strict).
    /// <paramref name="folderOrFile"/>: what <see cref="Checkpoint.Open"/> accepts (a .safetensors file, an .index.json,
    /// or a folder holding one of them); <see cref="ModelFolder"/> picks the released file.
    /// Accepts plain weights and the torch-parametrization layout (<c>….parametrizations.weight.original</c> plus
    /// per-task <c>lora_A</c>/<c>lora_B</c> stacks); in the latter the <see cref="JinaConfig.DefaultLoraTask"/>
    /// adapter is merged into each weight as it is copied (none when the task is null).
    /// </summary>
    public static JinaTextEncoder Load(string folderOrFile, JinaConfig config, Device device, ScalarType dtype)
    {
        var model = new JinaTextEncoder(config, device, dtype);
        try
        {
            using var checkpoint = Checkpoint.Open(folderOrFile);
            LoadInto(model, checkpoint);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private const string What = "Jina CLIP v2 text tower";
    private const string Original = ".parametrizations.weight.original";
    private const string LoraA = ".parametrizations.weight.0.lora_A";
    private const string LoraB = ".parametrizations.weight.0.lora_B";

    /// <summary>Where the tower sits: jina-clip-v2 (JinaCLIPModel), jina-embeddings-v3 (XLMRobertaLoRA), ComfyUI repacks, bare.</summary>
    internal static readonly string[] KnownPrefixes = ["text_model.transformer.roberta.", "roberta.", "model.", ""];

    /// <summary>Parts of the CLIP checkpoint that text encoding never uses (the pooler is replaced by mean pooling).</summary>
    private static readonly string[] UnusedParts = ["vision_model.", "visual_projection.", "logit_scale", "logit_bias", "spiece_model"];

    private static void LoadInto(JinaTextEncoder model, Checkpoint checkpoint)
    {
        var config = model.Config;
        var (map, prefix) = KeyMapFor(checkpoint);
        var plan = WeightLoader.Plan(model, checkpoint, map, What);
        var adapters = CheckAdapters(checkpoint, prefix, config);
        var targets = WeightLoader.ModuleTensors(model);
        var task = config.LoraTaskIndex;

        using var _ = torch.no_grad();
        foreach (var (key, ckKey) in plan)
        {
            using var scope = torch.NewDisposeScope();
            var weight = checkpoint.View(ckKey);
            if (task >= 0 && adapters.TryGetValue(ckKey, out var adapter))
                weight = MergeLora(weight, checkpoint.View(adapter.A)[task], checkpoint.View(adapter.B)[task], adapter.IsEmbedding, config.LoraScaling, model.Device);
            targets[key].copy_(weight);
        }
    }

    /// <summary>Maps checkpoint keys to module keys for the layout (prefix) the checkpoint uses; LoRA stacks are left to the merge.</summary>
    internal static (WeightLoader.KeyMap Map, string Prefix) KeyMapFor(Checkpoint checkpoint)
    {
        var prefix = KnownPrefixes.FirstOrDefault(p =>
                checkpoint.Contains(p + "embeddings.word_embeddings.weight") || checkpoint.Contains(p + "embeddings.word_embeddings" + Original))
            ?? throw new WeightLoadException($"{checkpoint.Source}: no embeddings.word_embeddings weight under any known Jina prefix ({string.Join(", ", KnownPrefixes.Where(p => p.Length > 0))} or none)");
        var pooler = prefix + "pooler.";
        WeightLoader.KeyMap map = key =>
        {
            if (UnusedParts.Any(key.StartsWith) || key.StartsWith(pooler, StringComparison.Ordinal)) return null;
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) return key;
            var name = key[prefix.Length..];
            if (name.EndsWith(LoraA, StringComparison.Ordinal) || name.EndsWith(LoraB, StringComparison.Ordinal)) return null;
            return name.EndsWith(Original, StringComparison.Ordinal) ? name[..^Original.Length] + ".weight" : name;
        };
        return (map, prefix);
    }

    private readonly record struct Adapter(string A, string B, bool IsEmbedding);

    /// <summary>
    /// What loading does with the checkpoint's LoRA adapters under <paramref name="config"/> (checked as loading checks
    /// them; throws <see cref="WeightLoadException"/> on a mismatch): for <c>models verify</c> and the load log.
    /// </summary>
    internal static string DescribeAdapters(Checkpoint checkpoint, JinaConfig config)
    {
        var (_, prefix) = KeyMapFor(checkpoint);
        var adapters = CheckAdapters(checkpoint, prefix, config);
        var stored = $"{config.LoraAdaptations.Count} task(s) stored, rank {config.LoraRank}";
        if (adapters.Count == 0) return "plain weights, no LoRA adapters stored";
        if (config.LoraTaskIndex < 0) return $"LoRA adapters on {adapters.Count} weights ({stored}) left out: no default_lora_task";
        return $"LoRA adapter '{config.DefaultLoraTask}' merged into {adapters.Count} weights ({stored}, scale lora_alpha / lora_rank = {config.LoraAlpha:G} / {config.LoraRank} = {config.LoraScaling:G})";
    }

    /// <summary>
    /// Pairs every parametrized weight with its adapter stacks and checks their shapes: Linear [out, in] takes
    /// A [T, r, in], B [T, out, r]; Embedding [V, H] takes A [T, V, r], B [T, r, H]; T = number of tasks, r = rank.
    /// </summary>
    private static Dictionary<string, Adapter> CheckAdapters(Checkpoint checkpoint, string prefix, JinaConfig config)
    {
        var adapters = new Dictionary<string, Adapter>(StringComparer.Ordinal);
        var missing = new List<string>();
        var misshaped = new List<string>();
        var orphans = new List<string>();
        long tasks = config.LoraAdaptations.Count, rank = config.LoraRank;
        foreach (var key in checkpoint.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal))
        {
            if (key.EndsWith(LoraA, StringComparison.Ordinal) || key.EndsWith(LoraB, StringComparison.Ordinal))
            {
                if (!checkpoint.Contains(key[..^LoraA.Length] + Original)) orphans.Add(key);
                continue;
            }
            if (!key.EndsWith(Original, StringComparison.Ordinal)) continue;
            var stem = key[..^Original.Length];
            string a = stem + LoraA, b = stem + LoraB;
            if (!checkpoint.Contains(a)) missing.Add(a);
            if (!checkpoint.Contains(b)) missing.Add(b);
            if (!checkpoint.Contains(a) || !checkpoint.Contains(b)) continue;
            var w = checkpoint.Info(key).Shape;
            var isEmbedding = stem.EndsWith("embeddings", StringComparison.Ordinal);
            long[] wantA = isEmbedding ? [tasks, w[0], rank] : [tasks, rank, w[^1]];
            long[] wantB = isEmbedding ? [tasks, rank, w[^1]] : [tasks, w[0], rank];
            var gotA = checkpoint.Info(a);
            var gotB = checkpoint.Info(b);
            if (!gotA.Shape.SequenceEqual(wantA)) misshaped.Add($"{a}: checkpoint {gotA.ShapeText}, expected [{string.Join(", ", wantA)}]");
            if (!gotB.Shape.SequenceEqual(wantB)) misshaped.Add($"{b}: checkpoint {gotB.ShapeText}, expected [{string.Join(", ", wantB)}]");
            adapters[key] = new Adapter(a, b, isEmbedding);
        }
        if (missing.Count + misshaped.Count + orphans.Count > 0)
        {
            var lines = new List<string> { $"{What}: LoRA adapters in {checkpoint.Source} do not match (tasks {tasks}, rank {rank})" };
            if (missing.Count > 0) lines.Add($"missing ({missing.Count}): {string.Join(", ", missing)}");
            if (misshaped.Count > 0) lines.Add($"misshaped ({misshaped.Count}): {string.Join(", ", misshaped)}");
            if (orphans.Count > 0) lines.Add($"unexpected ({orphans.Count}): {string.Join(", ", orphans)}");
            throw new WeightLoadException(string.Join(Environment.NewLine, lines));
        }
        return adapters;
    }

    /// <summary>
    /// LoRAParametrization's effective weight, computed in float32 on the target device and rounded once:
    /// Linear <c>W + s·B@A</c>, Embedding <c>W + s·A@B</c>.
    /// </summary>
    private static Tensor MergeLora(Tensor weight, Tensor a, Tensor b, bool isEmbedding, double scaling, Device device)
    {
        var w = weight.to(float32, device);
        var af = a.to(float32, device);
        var bf = b.to(float32, device);
        return w + (isEmbedding ? af.matmul(bf) : bf.matmul(af)) * scaling;
    }

    /// <summary>
    /// The built-in tiny model's weights: deterministic for a seed on every device (<see cref="SeededRandom.Initialise"/>).
    /// </summary>
    public static JinaTextEncoder CreateRandom(JinaConfig config, long seed, Device device, ScalarType dtype)
    {
        var model = new JinaTextEncoder(config, device, dtype);
        SeededRandom.Initialise(model, seed, (name, tensor, noise) =>
        {
            var isNorm = name.StartsWith("emb_ln.", StringComparison.Ordinal) || name.Contains(".norm");
            // LayerNorm scales near 1, biases and embeddings small, matrices scaled to keep activations O(1).
            return isNorm && name.EndsWith(".weight", StringComparison.Ordinal) ? noise * 0.1 + 1
                : name.EndsWith(".bias", StringComparison.Ordinal) ? noise * 0.02
                : name.StartsWith("embeddings.", StringComparison.Ordinal) ? noise
                : noise / Math.Sqrt(tensor.shape[^1]);
        });
        model.eval();
        return model;
    }
}

/// <summary>LayerNorm computed in float32 and cast back (TorchSharp has no autocast).</summary>
internal sealed class FloatLayerNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly long _dim;
    private readonly double _eps;

    public FloatLayerNorm(long dim, double eps, Device device, ScalarType dtype) : base(nameof(FloatLayerNorm))
    {
        _dim = dim;
        _eps = eps;
        weight = new Parameter(torch.ones(dim, dtype: dtype, device: device), requires_grad: false);
        bias = new Parameter(torch.zeros(dim, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var y = F.layer_norm(x.to(float32), [_dim], weight.to(float32), bias.to(float32), _eps);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>Word embedding plus token-type row 0 (there are no absolute positions: RoPE carries them).</summary>
internal sealed class XLMRobertaEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly EmptyEmbedding word_embeddings;
    private readonly EmptyEmbedding token_type_embeddings;

    public XLMRobertaEmbeddings(JinaConfig c, Device device, ScalarType dtype) : base(nameof(XLMRobertaEmbeddings))
    {
        word_embeddings = new EmptyEmbedding(c.VocabSize, c.HiddenSize, device, dtype);
        token_type_embeddings = new EmptyEmbedding(c.TypeVocabSize, c.HiddenSize, device, dtype);
        RegisterComponents();
    }

    public Tensor Weight => word_embeddings.Weight;

    public override Tensor forward(Tensor ids)
    {
        using var scope = torch.NewDisposeScope();
        var tokenType = token_type_embeddings.Weight[0];
        return (word_embeddings.forward(ids) + tokenType).MoveToOuterDisposeScope();
    }
}

/// <summary>Bidirectional self-attention with a fused [q | k | v] projection, rotate-half RoPE on q and k.</summary>
internal sealed class XLMRobertaAttention : nn.Module
{
    private readonly EmptyLinear Wqkv;
    private readonly EmptyLinear out_proj;
    private readonly int _heads;
    private readonly int _headDim;

    public XLMRobertaAttention(JinaConfig c, Device device, ScalarType dtype) : base(nameof(XLMRobertaAttention))
    {
        _heads = c.NumAttentionHeads;
        _headDim = c.HeadDim;
        Wqkv = new EmptyLinear(c.HiddenSize, 3 * c.HiddenSize, hasBias: true, device, dtype);
        out_proj = new EmptyLinear(c.HiddenSize, c.HiddenSize, hasBias: true, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, L, hidden]; cos/sin [L, head_dim] float32; keyReal bool [B, 1, 1, L].</summary>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor keyReal)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], l = x.shape[1];
        // (B, L, 3·H·D) -> (3, B, H, L, D)
        var qkv = Wqkv.forward(x).view(b, l, 3, _heads, _headDim).permute(2, 0, 3, 1, 4);
        var q = RotateHalfRope.Apply(qkv[0], cos, sin);
        var k = RotateHalfRope.Apply(qkv[1], cos, sin);
        // SDPA's default scale is 1/sqrt(head_dim), as in Jina's attention; softmax accumulates in float32.
        var o = F.scaled_dot_product_attention(q, k, qkv[2], attn_mask: keyReal);
        o = o.transpose(1, 2).reshape(b, l, _heads * _headDim);
        return out_proj.forward(o).MoveToOuterDisposeScope();
    }
}

internal sealed class XLMRobertaMlp : nn.Module<Tensor, Tensor>
{
    private readonly EmptyLinear fc1;
    private readonly EmptyLinear fc2;

    public XLMRobertaMlp(JinaConfig c, Device device, ScalarType dtype) : base(nameof(XLMRobertaMlp))
    {
        fc1 = new EmptyLinear(c.HiddenSize, c.IntermediateSize, hasBias: true, device, dtype);
        fc2 = new EmptyLinear(c.IntermediateSize, c.HiddenSize, hasBias: true, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return fc2.forward(F.gelu(fc1.forward(x))).MoveToOuterDisposeScope();
    }
}

/// <summary>Post-LN block: <c>x = norm1(x + attn(x))</c>, <c>x = norm2(x + mlp(x))</c>.</summary>
internal sealed class XLMRobertaBlock : nn.Module
{
    private readonly XLMRobertaAttention mixer;
    private readonly XLMRobertaMlp mlp;
    private readonly FloatLayerNorm norm1;
    private readonly FloatLayerNorm norm2;

    public XLMRobertaBlock(JinaConfig c, Device device, ScalarType dtype) : base(nameof(XLMRobertaBlock))
    {
        mixer = new XLMRobertaAttention(c, device, dtype);
        mlp = new XLMRobertaMlp(c, device, dtype);
        norm1 = new FloatLayerNorm(c.HiddenSize, c.LayerNormEps, device, dtype);
        norm2 = new FloatLayerNorm(c.HiddenSize, c.LayerNormEps, device, dtype);
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor keyReal)
    {
        using var scope = torch.NewDisposeScope();
        var h = norm1.forward(x + mixer.forward(x, cos, sin, keyReal));
        return norm2.forward(h + mlp.forward(h)).MoveToOuterDisposeScope();
    }
}

internal sealed class XLMRobertaEncoder : nn.Module
{
    private readonly ModuleList<XLMRobertaBlock> layers;

    public XLMRobertaEncoder(JinaConfig c, Device device, ScalarType dtype) : base(nameof(XLMRobertaEncoder))
    {
        layers = new ModuleList<XLMRobertaBlock>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new XLMRobertaBlock(c, device, dtype)).ToArray());
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor keyReal)
    {
        using var scope = torch.NewDisposeScope();
        foreach (var layer in layers) x = layer.forward(x, cos, sin, keyReal);
        return x.MoveToOuterDisposeScope();
    }
}
