using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Modules;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using Linear = NewBie.Pipeline.Modules.Linear;

namespace NewBie.Pipeline;

/// <summary>
/// The NewBie denoiser, upstream <c>NextDiT_CLIP</c> (NewBieAI-Lab/NewBie-image-Exp0.1 models/model.py; model-spec §3).
/// Predicts the velocity v = x_data − x_noise at time t (0 = noise, 1 = clean) from Gemma caption features,
/// their mask and the pooled Jina vector. Field names are the checkpoint's key segments.
/// </summary>
public sealed class NextDiT : nn.Module
{
    private const int FrequencyEmbeddingSize = 256;
    private const double MaxPeriod = 10000;

    private readonly Linear x_embedder;
    private readonly ModuleList<JointTransformerBlock> noise_refiner;
    private readonly ModuleList<JointTransformerBlock> context_refiner;
    private readonly TimestepEmbedder t_embedder;
    private readonly Sequential cap_embedder;
    private readonly ModuleList<JointTransformerBlock> layers;
    // Upstream defines norm_final but never calls it; it exists so the checkpoint loads strictly.
    private readonly RmsNorm norm_final;
    private readonly FinalLayer final_layer;
    private readonly Sequential time_text_embed;
    private readonly Sequential clip_text_pooled_proj;

    private readonly Rope _rope;

    public NextDiTConfig Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    public NextDiT(NextDiTConfig config, Device device, ScalarType dtype) : base(nameof(NextDiT))
    {
        config.Validate();
        Config = config;
        Device = device;
        DType = dtype;
        var c = config;
        var patchDim = c.PatchSize * c.PatchSize * c.InChannels;

        x_embedder = new Linear(patchDim, c.Dim, true, device, dtype);
        noise_refiner = nn.ModuleList(Enumerable.Range(0, c.NRefinerLayers).Select(_ => new JointTransformerBlock(c, modulation: true, device, dtype)).ToArray());
        context_refiner = nn.ModuleList(Enumerable.Range(0, c.NRefinerLayers).Select(_ => new JointTransformerBlock(c, modulation: false, device, dtype)).ToArray());
        t_embedder = new TimestepEmbedder(c.AdaLnDim, FrequencyEmbeddingSize, device, dtype);
        cap_embedder = nn.Sequential(
            ("0", new RmsNorm(c.CapFeatDim, c.NormEps, device, dtype)),
            ("1", new Linear(c.CapFeatDim, c.Dim, true, device, dtype)));
        layers = nn.ModuleList(Enumerable.Range(0, c.NLayers).Select(_ => new JointTransformerBlock(c, modulation: true, device, dtype)).ToArray());
        norm_final = new RmsNorm(c.Dim, c.NormEps, device, dtype);
        final_layer = new FinalLayer(c, device, dtype);
        time_text_embed = nn.Sequential(
            ("0", nn.SiLU()),
            ("1", new Linear(c.AdaLnDim + c.ClipTextDim, c.AdaLnDim, true, device, dtype)));
        // Upstream leaves this RMSNorm at its class default eps (1e-6), not norm_eps.
        clip_text_pooled_proj = nn.Sequential(
            ("0", new RmsNorm(c.ClipTextDim, 1e-6, device, dtype)),
            ("1", new Linear(c.ClipTextDim, c.ClipTextDim, true, device, dtype)));
        // The tables stay on the host: each layout gathers its rows there once and moves one table to the device.
        _rope = new Rope(c.AxesDims, c.AxesLens, c.RopeTheta, CPU);
        RegisterComponents();
    }

    /// <summary>
    /// Loads a checkpoint strictly (safetensors file, sharded index or folder). Keys may be bare (the released
    /// transformer file), or carry the <c>model.diffusion_model.</c> (ComfyUI all-in-one) or <c>inner_model.</c>
    /// (diffusers wrapper) prefix; with a prefix, keys outside it belong to other components and are ignored.
    /// </summary>
    public static NextDiT Load(string folderOrFile, NextDiTConfig config, Device device, ScalarType dtype)
    {
        using var checkpoint = Checkpoint.Open(folderOrFile);
        var model = new NextDiT(config, device, dtype);
        try
        {
            WeightLoader.Load(model, checkpoint, KeyMapFor(checkpoint), "NextDiT");
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    internal static WeightLoader.KeyMap KeyMapFor(Checkpoint checkpoint)
    {
        foreach (var prefix in new[] { "model.diffusion_model.", "inner_model." })
            if (checkpoint.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal)))
                return k => k.StartsWith(prefix, StringComparison.Ordinal) ? k[prefix.Length..] : null;
        return WeightLoader.Identity;
    }

    /// <summary>
    /// Random weights for the built-in tiny model and for benchmarks, the same for a seed on every device
    /// (<see cref="SeededRandom.Initialise"/>): matrices N(0, 1/fan_in), biases N(0, 0.05²), norm scales 1 + N(0, 0.1²).
    /// </summary>
    public static NextDiT CreateRandom(NextDiTConfig config, long seed, Device device, ScalarType dtype)
    {
        var model = new NextDiT(config, device, dtype);
        SeededRandom.Initialise(model, seed, (name, p, noise) =>
            p.dim() >= 2 ? noise / Math.Sqrt(p.shape[1])
            : name.EndsWith(".bias", StringComparison.Ordinal) ? noise * 0.05
            : noise * 0.1 + 1);
        return model;
    }

    /// <summary>
    /// Velocity for a batch. x [B, C, H, W] (H, W multiples of the patch size); t [B] (0 = noise); capFeats
    /// [B, L, cap_feat_dim] right-padded; capMask [B, L] (1/true = real token, right-padded); clipPooled [B, clip_text_dim].
    /// Reads the mask on the host to get the lengths: a step loop calls the overload with host lengths instead.
    /// </summary>
    public Tensor forward(Tensor x, Tensor t, Tensor capFeats, Tensor capMask, Tensor clipPooled) =>
        forward(x, t, capFeats, CaptionLengths(capMask), clipPooled);

    /// <summary>
    /// The caption lengths of a right-padded mask [B, L], read on the host (a device synchronisation: do it before a
    /// step loop, not in it). Throws unless every row is 1…1 0…0, as the Gemma tokenizer pads.
    /// </summary>
    public static long[] CaptionLengths(Tensor capMask)
    {
        _hostReads++;
        using var scope = torch.NewDisposeScope();
        var mask = capMask.cpu().to(ScalarType.Bool);
        var lengths = mask.to(int64).sum(1).data<long>().ToArray();
        var rightPadded = torch.arange(mask.shape[1]).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1);
        if (!rightPadded.eq(mask).all().item<bool>())
            throw new ArgumentException("NextDiT caption mask must be right-padded (real tokens first, then padding)");
        return lengths;
    }

    /// <summary>
    /// Velocity for a batch whose caption lengths are known on the host: capFeats [B, ≥ max length, cap_feat_dim]. Returns
    /// [B, C, H, W] in the model dtype. Nothing here waits on the device: the lengths are host values, and the RoPE
    /// rotations, position ids and masks of a (lengths, size) layout are built once and cached (<see cref="LayoutBuilds"/>).
    /// A batch whose captions all have one length runs attention with no mask (the GPU's fast kernels); mixed lengths
    /// are padded and masked as upstream does.
    /// </summary>
    public Tensor forward(Tensor x, Tensor t, Tensor capFeats, long[] capLens, Tensor clipPooled)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = Config.PatchSize;
        if (x.dim() != 4 || x.shape[1] != Config.InChannels || x.shape[2] % p != 0 || x.shape[3] % p != 0)
            throw new ArgumentException($"NextDiT expects x [B, {Config.InChannels}, H, W] with H, W multiples of {p}, got [{string.Join(", ", x.shape)}]");
        long batch = x.shape[0], height = x.shape[2], width = x.shape[3];
        long ht = height / p, wt = width / p;
        if (capLens.Length != batch || capFeats.shape[0] != batch || t.shape[0] != batch || clipPooled.shape[0] != batch)
            throw new ArgumentException($"NextDiT batch mismatch: x {batch}, t {t.shape[0]}, captions {capFeats.shape[0]}, lengths {capLens.Length}, pooled {clipPooled.shape[0]}");
        var layout = LayoutFor(capLens, ht, wt);
        var maxCap = layout.MaxCap;

        var adaln = AdaLnInput(t, clipPooled);

        // Caption tokens, refined on their own.
        var cap = cap_embedder.forward(capFeats.to(DType, Device)[.., ..(int)maxCap]);
        foreach (var block in context_refiner)
            cap = block.forward(cap, layout.CaptionMask, layout.CaptionRotations, null);

        // Image tokens, refined on their own (all images of a batch share one size, so no mask).
        var img = x_embedder.forward(Patchify(x.to(DType, Device), p));
        foreach (var block in noise_refiner)
            img = block.forward(img, null, layout.ImageRotations, adaln);

        // Joint sequence: the L_b real caption tokens, then the image tokens, then padding to the longest.
        Tensor joint;
        if (layout.Uniform)
        {
            joint = torch.cat([cap, img], 1);
        }
        else
        {
            var rows = new List<Tensor>();
            for (var b = 0; b < batch; b++)
            {
                var pad = torch.zeros([maxCap - capLens[b], Config.Dim], dtype: DType, device: Device);
                rows.Add(torch.cat([cap[b, ..(int)capLens[b]], img[b], pad], 0));
            }
            joint = torch.stack(rows, 0);
        }
        foreach (var block in layers)
            joint = block.forward(joint, layout.JointMask, layout.JointRotations, adaln);
        var outTokens = final_layer.forward(joint, adaln);

        var imageTokens = layout.Uniform
            ? outTokens[.., (int)maxCap..]
            : torch.stack(Enumerable.Range(0, (int)batch).Select(b => outTokens[b, (int)capLens[b]..(int)(capLens[b] + ht * wt)]).ToArray(), 0);
        return Unpatchify(imageTokens, ht, wt, p, Config.InChannels).MoveToOuterDisposeScope();
    }

    /// <summary>What a forward needs that depends only on the caption lengths and the latent size, on the device.</summary>
    private sealed class Layout : IDisposable
    {
        public required long MaxCap { get; init; }
        public required bool Uniform { get; init; }
        public required Tensor CaptionRotations { get; init; }
        public required Tensor ImageRotations { get; init; }
        public required Tensor JointRotations { get; init; }
        public Tensor? CaptionMask { get; init; }
        public Tensor? JointMask { get; init; }

        public void Dispose()
        {
            foreach (var t in new[] { CaptionRotations, ImageRotations, JointRotations, CaptionMask, JointMask }) t?.Dispose();
        }
    }

    /// <summary>Layouts kept: a job uses two (cond and uncond lengths) per size; a few jobs' worth stay warm.</summary>
    private const int MaxLayouts = 16;
    private readonly Dictionary<string, Layout> _layouts = new(StringComparer.Ordinal);

    // Per thread: a generation runs on one thread, and tests on other threads must not disturb its count.
    [ThreadStatic] private static long _hostReads;

    /// <summary>
    /// How many times any NextDiT code read device values on the host (<see cref="CaptionLengths"/> is the only place that
    /// does), on the calling thread. A step loop over conditionings made beforehand leaves it unchanged.
    /// </summary>
    internal static long HostReads => _hostReads;

    /// <summary>How many layouts were built (each one: host position ids, a host→device copy, RoPE gathers, masks).</summary>
    internal int LayoutBuilds { get; private set; }

    private Layout LayoutFor(IReadOnlyList<long> capLens, long ht, long wt)
    {
        var key = $"{ht}x{wt}:{string.Join(",", capLens)}";
        if (_layouts.TryGetValue(key, out var cached)) return cached;

        var lengths = capLens.ToArray();
        var maxCap = lengths.Max();
        if (ht >= Config.AxesLens[1] || wt >= Config.AxesLens[2])
            throw new ArgumentException($"NextDiT latent gives {ht}×{wt} patches; RoPE covers fewer than {Config.AxesLens[1]}×{Config.AxesLens[2]}");
        if (lengths.Min() < 1 || maxCap >= Config.AxesLens[0])
            throw new ArgumentException($"NextDiT caption lengths must be 1…{Config.AxesLens[0] - 1}, got [{string.Join(", ", lengths)}]");
        var uniform = lengths.All(l => l == maxCap);

        using var scope = torch.NewDisposeScope();
        Tensor Rotations(Tensor ids)
        {
            var (cos, sin) = _rope.Lookup(ids);
            return Rope.Rotations(cos, sin).to(Device);
        }
        Tensor? captionMask = null, jointMask = null;
        if (!uniform)
        {
            var lengthsOnDevice = torch.tensor(lengths, device: Device).unsqueeze(1);
            captionMask = AttentionMask(torch.arange(maxCap, device: Device).unsqueeze(0) < lengthsOnDevice);
            jointMask = AttentionMask(torch.arange(maxCap + ht * wt, device: Device).unsqueeze(0) < lengthsOnDevice + ht * wt);
        }
        var layout = new Layout
        {
            MaxCap = maxCap,
            Uniform = uniform,
            CaptionRotations = Rotations(CaptionPositionIds(maxCap)).DetachFromDisposeScope(),
            ImageRotations = Rotations(ImagePositionIds(lengths, ht, wt)).DetachFromDisposeScope(),
            JointRotations = Rotations(JointPositionIds(lengths, ht, wt)).DetachFromDisposeScope(),
            CaptionMask = captionMask?.DetachFromDisposeScope(),
            JointMask = jointMask?.DetachFromDisposeScope(),
        };
        if (_layouts.Count >= MaxLayouts)
        {
            foreach (var old in _layouts.Values) old.Dispose();
            _layouts.Clear();
        }
        _layouts[key] = layout;
        LayoutBuilds++;
        return layout;
    }

    /// <summary>
    /// The conditioning vector c of every modulated block and of the final layer:
    /// time_text_embed(cat[t_embedder(t), clip_text_pooled_proj(pooled)]) → [B, adaln_dim].
    /// </summary>
    internal Tensor AdaLnInput(Tensor t, Tensor clipPooled)
    {
        using var scope = torch.NewDisposeScope();
        var tEmb = t_embedder.forward(t.to(Device));
        var clipEmb = clip_text_pooled_proj.forward(clipPooled.to(DType, Device));
        return time_text_embed.forward(torch.cat([tEmb, clipEmb], -1)).MoveToOuterDisposeScope();
    }

    /// <summary>Key-padding mask [B, S] (true = attend) → SDPA boolean mask [B, 1, 1, S].</summary>
    private static Tensor AttentionMask(Tensor keep) => keep.unsqueeze(1).unsqueeze(1);

    /// <summary>
    /// [B, C, H, W] → [B, (H/p)(W/p), p·p·C]: token r·Wt + c, feature (py·p + px)·C + ch (upstream patchify_and_embed).
    /// </summary>
    internal static Tensor Patchify(Tensor x, int p)
    {
        long b = x.shape[0], ch = x.shape[1], ht = x.shape[2] / p, wt = x.shape[3] / p;
        return x.view(b, ch, ht, p, wt, p).permute(0, 2, 4, 3, 5, 1).reshape(b, ht * wt, p * p * ch);
    }

    /// <summary>Inverse of <see cref="Patchify"/>: [B, Ht·Wt, p·p·C] → [B, C, Ht·p, Wt·p].</summary>
    internal static Tensor Unpatchify(Tensor tokens, long ht, long wt, int p, int channels)
    {
        var b = tokens.shape[0];
        return tokens.reshape(b, ht, wt, p, p, channels).permute(0, 5, 1, 3, 2, 4).reshape(b, channels, ht * p, wt * p);
    }

    /// <summary>Caption token i → (i, 0, 0); one row shared by the batch: [1, L, 3].</summary>
    internal static Tensor CaptionPositionIds(long length)
    {
        var ids = new long[length * 3];
        for (var i = 0; i < length; i++) ids[i * 3] = i;
        return torch.tensor(ids, [1, length, 3]);
    }

    /// <summary>Image token (r, c) of sample b → (L_b, r, c): [B, Ht·Wt, 3].</summary>
    internal static Tensor ImagePositionIds(long[] capLens, long ht, long wt)
    {
        var n = ht * wt;
        var ids = new long[capLens.Length * n * 3];
        for (var b = 0; b < capLens.Length; b++)
            for (long r = 0, k = b * n * 3; r < ht; r++)
                for (long c = 0; c < wt; c++, k += 3)
                    (ids[k], ids[k + 1], ids[k + 2]) = (capLens[b], r, c);
        return torch.tensor(ids, [capLens.Length, n, 3]);
    }

    /// <summary>Joint sequence ids [B, max(L_b) + Ht·Wt, 3]: captions, then image tokens, then zero rows (upstream's padding).</summary>
    internal static Tensor JointPositionIds(long[] capLens, long ht, long wt)
    {
        var n = ht * wt;
        var seq = capLens.Max() + n;
        var ids = new long[capLens.Length * seq * 3];
        for (var b = 0; b < capLens.Length; b++)
        {
            long k = b * seq * 3;
            for (long i = 0; i < capLens[b]; i++, k += 3) ids[k] = i;
            for (long r = 0; r < ht; r++)
                for (long c = 0; c < wt; c++, k += 3)
                    (ids[k], ids[k + 1], ids[k + 2]) = (capLens[b], r, c);
        }
        return torch.tensor(ids, [capLens.Length, seq, 3]);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rope.Dispose();
            foreach (var layout in _layouts.Values) layout.Dispose();
            _layouts.Clear();
        }
        base.Dispose(disposing);
    }
}

/// <summary>t → sinusoidal features [cos(t·f), sin(t·f)], f_k = exp(−ln(max_period)·k/half), then an MLP (upstream TimestepEmbedder).</summary>
internal sealed class TimestepEmbedder : nn.Module<Tensor, Tensor>
{
    private readonly Sequential mlp;
    private readonly int _frequencySize;

    public TimestepEmbedder(int hidden, int frequencySize, Device device, ScalarType dtype) : base(nameof(TimestepEmbedder))
    {
        if (frequencySize % 2 != 0) throw new ArgumentException($"TimestepEmbedder frequency size must be even, got {frequencySize}");
        _frequencySize = frequencySize;
        mlp = nn.Sequential(
            ("0", new Linear(frequencySize, hidden, true, device, dtype)),
            ("1", nn.SiLU()),
            ("2", new Linear(hidden, hidden, true, device, dtype)));
        RegisterComponents();
    }

    public override Tensor forward(Tensor t)
    {
        using var scope = torch.NewDisposeScope();
        var half = _frequencySize / 2;
        // Same op order as upstream (scalar·arange / half, in float32) so the features round identically.
        var freqs = torch.exp(torch.arange(0, half, dtype: float32, device: t.device) * -Math.Log(10000) / half);
        var args = t.to(float32).unsqueeze(1) * freqs.unsqueeze(0);
        var features = torch.cat([args.cos(), args.sin()], -1);
        var dtype = mlp.parameters().First().dtype;
        return mlp.forward(features.to(dtype)).MoveToOuterDisposeScope();
    }
}

/// <summary>Grouped-query self-attention with per-head q/k RMSNorm and 3-axis RoPE (upstream JointAttention).</summary>
internal sealed class JointAttention : nn.Module
{
    private readonly Linear qkv;
    private readonly Linear @out;
    private readonly RmsNorm q_norm;
    private readonly RmsNorm k_norm;
    private readonly int _heads, _kvHeads, _headDim;

    public JointAttention(NextDiTConfig c, Device device, ScalarType dtype) : base(nameof(JointAttention))
    {
        _heads = c.NHeads;
        _kvHeads = c.NKvHeads;
        _headDim = c.HeadDim;
        qkv = new Linear(c.Dim, (c.NHeads + 2 * c.NKvHeads) * c.HeadDim, false, device, dtype);
        @out = new Linear(c.NHeads * c.HeadDim, c.Dim, false, device, dtype);
        // Upstream builds these with the RMSNorm class default eps, 1e-6.
        q_norm = new RmsNorm(c.HeadDim, 1e-6, device, dtype);
        k_norm = new RmsNorm(c.HeadDim, 1e-6, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, S, dim]; mask [B, 1, 1, S] bool or null (every key valid); rotations [B or 1, S, 1, head_dim/2] complex (Rope.Rotations).</summary>
    public Tensor forward(Tensor x, Tensor? mask, Tensor rotations)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], s = x.shape[1];
        var parts = qkv.forward(x).split([_heads * _headDim, _kvHeads * _headDim, _kvHeads * _headDim], -1);
        var q = q_norm.forward(parts[0].view(b, s, _heads, _headDim));
        var k = k_norm.forward(parts[1].view(b, s, _kvHeads, _headDim));
        var v = parts[2].view(b, s, _kvHeads, _headDim);
        q = Rope.Apply(q, rotations);
        k = Rope.Apply(k, rotations);
        // (B, S, H, D) -> (B, H, S, D); KV head j serves query heads j·rep … j·rep + rep − 1.
        var rep = _heads / _kvHeads;
        q = q.transpose(1, 2);
        k = k.transpose(1, 2);
        v = v.transpose(1, 2);
        if (rep > 1)
        {
            k = k.repeat_interleave(rep, dim: 1);
            v = v.repeat_interleave(rep, dim: 1);
        }
        var o = F.scaled_dot_product_attention(q, k, v, attn_mask: mask);
        return @out.forward(o.transpose(1, 2).reshape(b, s, _heads * _headDim)).MoveToOuterDisposeScope();
    }
}

/// <summary>SwiGLU: w2(silu(w1 x) · w3 x), no biases (upstream FeedForward).</summary>
internal sealed class FeedForward : nn.Module<Tensor, Tensor>
{
    private readonly Linear w1;
    private readonly Linear w2;
    private readonly Linear w3;

    public FeedForward(NextDiTConfig c, Device device, ScalarType dtype) : base(nameof(FeedForward))
    {
        var hidden = c.FfnHiddenDim;
        w1 = new Linear(c.Dim, hidden, false, device, dtype);
        w2 = new Linear(hidden, c.Dim, false, device, dtype);
        w3 = new Linear(c.Dim, hidden, false, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return w2.forward(F.silu(w1.forward(x)) * w3.forward(x)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Sandwich-normed attention + SwiGLU block (upstream JointTransformerBlock). Modulated blocks take
/// [scale_msa, gate_msa, scale_mlp, gate_mlp] from c: inputs scaled by (1 + scale), outputs gated by tanh(gate); no shift.
/// </summary>
internal sealed class JointTransformerBlock : nn.Module
{
    private readonly JointAttention attention;
    private readonly FeedForward feed_forward;
    private readonly RmsNorm attention_norm1;
    private readonly RmsNorm ffn_norm1;
    private readonly RmsNorm attention_norm2;
    private readonly RmsNorm ffn_norm2;
    private readonly Sequential? adaLN_modulation;

    public JointTransformerBlock(NextDiTConfig c, bool modulation, Device device, ScalarType dtype) : base(nameof(JointTransformerBlock))
    {
        attention = new JointAttention(c, device, dtype);
        feed_forward = new FeedForward(c, device, dtype);
        attention_norm1 = new RmsNorm(c.Dim, c.NormEps, device, dtype);
        ffn_norm1 = new RmsNorm(c.Dim, c.NormEps, device, dtype);
        attention_norm2 = new RmsNorm(c.Dim, c.NormEps, device, dtype);
        ffn_norm2 = new RmsNorm(c.Dim, c.NormEps, device, dtype);
        if (modulation)
            adaLN_modulation = nn.Sequential(("0", nn.SiLU()), ("1", new Linear(c.AdaLnDim, 4 * c.Dim, true, device, dtype)));
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor? mask, Tensor rotations, Tensor? c)
    {
        using var scope = torch.NewDisposeScope();
        if (adaLN_modulation is null)
        {
            x = x + attention_norm2.forward(attention.forward(attention_norm1.forward(x), mask, rotations));
            x = x + ffn_norm2.forward(feed_forward.forward(ffn_norm1.forward(x)));
            return x.MoveToOuterDisposeScope();
        }
        if (c is null) throw new ArgumentException("a modulated NextDiT block needs the conditioning vector");
        var mod = adaLN_modulation.forward(c).chunk(4, 1);
        var (scaleMsa, gateMsa, scaleMlp, gateMlp) = (mod[0].unsqueeze(1), mod[1].unsqueeze(1), mod[2].unsqueeze(1), mod[3].unsqueeze(1));
        var attn = attention.forward(attention_norm1.forward(x) * (1 + scaleMsa), mask, rotations);
        x = x + gateMsa.tanh() * attention_norm2.forward(attn);
        var ffn = feed_forward.forward(ffn_norm1.forward(x) * (1 + scaleMlp));
        x = x + gateMlp.tanh() * ffn_norm2.forward(ffn);
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>linear(LayerNorm_noaffine(x) · (1 + scale(c))), LayerNorm eps 1e-6 (upstream FinalLayer).</summary>
internal sealed class FinalLayer : nn.Module
{
    private readonly Linear linear;
    private readonly Sequential adaLN_modulation;
    private readonly long _dim;

    public FinalLayer(NextDiTConfig c, Device device, ScalarType dtype) : base(nameof(FinalLayer))
    {
        _dim = c.Dim;
        linear = new Linear(c.Dim, c.PatchSize * c.PatchSize * c.InChannels, true, device, dtype);
        adaLN_modulation = nn.Sequential(("0", nn.SiLU()), ("1", new Linear(c.AdaLnDim, c.Dim, true, device, dtype)));
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor c)
    {
        using var scope = torch.NewDisposeScope();
        var scale = adaLN_modulation.forward(c).unsqueeze(1);
        var normed = F.layer_norm(x.to(float32), [_dim], eps: 1e-6).to(x.dtype);
        return linear.forward(normed * (1 + scale)).MoveToOuterDisposeScope();
    }
}
