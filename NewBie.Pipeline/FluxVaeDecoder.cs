using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace NewBie.Pipeline;

/// <summary>How decoded values in [0, 1] become bytes.</summary>
public enum PixelRounding
{
    /// <summary><c>round(x·255)</c>, half to even (torch.round): what diffusers' pipelines do.</summary>
    Round,
    /// <summary><c>(x·255).to(uint8)</c>: what torchvision <c>to_pil_image</c> in the upstream NewBie demo does.</summary>
    Truncate,
}

/// <summary>
/// The FLUX.1 VAE decoder (diffusers <c>AutoencoderKL</c>, decoder half only): scaled latent → image in [-1, 1].
/// The module tree spells the diffusers checkpoint keys (<c>decoder.up_blocks.0.resnets.1.conv2.weight</c>), so the
/// released <c>vae/diffusion_pytorch_model.safetensors</c> loads by name; its encoder tensors are skipped.
/// </summary>
public sealed class FluxVaeDecoder : nn.Module<Tensor, Tensor>
{
    internal readonly Decoder decoder;

    public VaeConfig Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    public FluxVaeDecoder(VaeConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32) : base(nameof(FluxVaeDecoder))
    {
        config.Validate();
        Config = config;
        Device = device ?? CPU;
        DType = dtype;
        decoder = new Decoder(config, Device, dtype);
        RegisterComponents();
    }

    /// <summary>Ignores the encoder half of a full AutoencoderKL checkpoint; every other key must match exactly.</summary>
    public static string? KeyMap(string checkpointKey) =>
        checkpointKey.StartsWith("encoder.", StringComparison.Ordinal) || checkpointKey.StartsWith("quant_conv.", StringComparison.Ordinal)
            ? null
            : checkpointKey;

    /// <summary>Builds the decoder on <paramref name="device"/> and loads it strictly from a safetensors file or a folder holding one.</summary>
    public static FluxVaeDecoder Load(string folderOrFile, VaeConfig config, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var vae = new FluxVaeDecoder(config, device, dtype);
        try
        {
            using var checkpoint = Checkpoint.Open(folderOrFile);
            WeightLoader.Load(vae, checkpoint, KeyMap, "FLUX VAE decoder");
            vae.eval();
            return vae;
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Deterministic random weights for the built-in tiny model, the same on every device (<see cref="SeededRandom.Initialise"/>).
    /// Scales follow the parity fixture's init (conv/linear N(0, 1/fan_in), conv_out ×1.6, norm scales 1 + N(0, 0.1²),
    /// biases N(0, 0.05²)), which keeps activations and the output in a sensible range through the whole stack.
    /// </summary>
    public static FluxVaeDecoder CreateRandom(VaeConfig config, long seed, Device? device = null, ScalarType dtype = ScalarType.Float32)
    {
        var vae = new FluxVaeDecoder(config, device, dtype);
        SeededRandom.Initialise(vae, seed, (name, p, noise) =>
            name.EndsWith(".bias", StringComparison.Ordinal) ? noise * 0.05
            : p.dim() == 1 ? 1 + noise * 0.1
            : noise / Math.Sqrt(p.shape.Skip(1).Aggregate(1L, (a, b) => a * b)) * (name == "decoder.conv_out.weight" ? 1.6 : 1.0));
        vae.eval();
        return vae;
    }

    /// <summary>Full decode; see <see cref="Decode"/>.</summary>
    public override Tensor forward(Tensor latent) => Decode(latent);

    /// <summary>
    /// Scaled latent [B, latent_channels, h, w] (as the sampler leaves it) → float32 [B, out_channels, h·f, w·f], nominally
    /// in [-1, 1] but not clamped. With <paramref name="tiling"/> the decoder runs tile by tile and the result is on the CPU.
    /// </summary>
    public Tensor Decode(Tensor latent, VaeTiling? tiling = null)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        if (latent.dim() != 4 || latent.shape[1] != Config.LatentChannels)
            throw new ArgumentException($"latent must be [B, {Config.LatentChannels}, h, w], got [{string.Join(", ", latent.shape)}]");
        var z = DecoderInput(latent);
        var image = tiling is null ? decoder.call(z) : decoder.Run(z, TiledLayers.For(tiling, Device, z.shape[2]));
        return image.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary><c>latent / scaling_factor + shift_factor</c> (flux <c>AutoEncoder.decode</c>), in float32, then in the decoder's dtype and device.</summary>
    public Tensor DecoderInput(Tensor latent)
    {
        using var scope = torch.NewDisposeScope();
        var z = latent.to(ScalarType.Float32) / Config.ScalingFactor + Config.ShiftFactor;
        return z.to(DType, Device).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Decoded [B, C, H, W] → uint8 [B, H, W, C] on the CPU: <c>clamp((x + 1) / 2, 0, 1) · 255</c>, then rounded or truncated.
    /// </summary>
    public static Tensor ToImageBytes(Tensor decoded, PixelRounding rounding = PixelRounding.Round)
    {
        using var scope = torch.NewDisposeScope();
        var x = ((decoded.to(ScalarType.Float32) + 1) / 2).clamp(0.0, 1.0) * 255;
        x = rounding == PixelRounding.Round ? x.round() : x.trunc();
        return x.to(ScalarType.Byte).permute(0, 2, 3, 1).contiguous().cpu().MoveToOuterDisposeScope();
    }

    /// <summary>One row-major H × W × 3 RGB byte array per image (the layout of <see cref="GeneratedImage.Rgb"/>).</summary>
    public static byte[][] ToRgb(Tensor decoded, PixelRounding rounding = PixelRounding.Round)
    {
        if (decoded.dim() != 4 || decoded.shape[1] != 3)
            throw new ArgumentException($"expected decoded RGB [B, 3, H, W], got [{string.Join(", ", decoded.shape)}]");
        using var bytes = ToImageBytes(decoded, rounding);
        var result = new byte[bytes.shape[0]][];
        for (int i = 0; i < result.Length; i++)
        {
            using var image = bytes[i];
            result[i] = image.bytes.ToArray();
        }
        return result;
    }
}

/// <summary>diffusers <c>Decoder</c>: conv_in → mid block → up blocks (lowest resolution first) → norm, SiLU, conv_out.</summary>
internal sealed class Decoder : nn.Module<Tensor, Tensor>
{
    internal readonly VaeConv2d conv_in;
    internal readonly UNetMidBlock2D mid_block;
    internal readonly ModuleList<UpDecoderBlock2D> up_blocks = new();
    internal readonly VaeGroupNorm conv_norm_out;
    /// <summary>
    /// Computed in float32 whatever the weights' dtype: its few output channels are the pixels, so the upcast costs
    /// little and keeps bf16 rounding out of the image. It also sidesteps libtorch 2.10's CPU bf16 conv kernel, which is
    /// wrong for 3 output channels (max error 1.7, against 0.013 for the same bf16-rounded inputs in float32).
    /// </summary>
    internal readonly VaeConv2d conv_out;

    public Decoder(VaeConfig c, Device device, ScalarType dtype) : base(nameof(Decoder))
    {
        var widths = c.BlockOutChannels.Reverse().ToArray();
        conv_in = new VaeConv2d(c.LatentChannels, widths[0], 3, device, dtype);
        mid_block = new UNetMidBlock2D(widths[0], c, device, dtype);
        int previous = widths[0];
        for (int i = 0; i < widths.Length; i++)
        {
            up_blocks.Add(new UpDecoderBlock2D(previous, widths[i], c, addUpsample: i < widths.Length - 1, device, dtype));
            previous = widths[i];
        }
        conv_norm_out = new VaeGroupNorm(c.NormNumGroups, previous, c.NormEps, device, dtype);
        conv_out = new VaeConv2d(previous, c.OutChannels, 3, device, dtype, computeInFloat32: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor z)
    {
        using var scope = torch.NewDisposeScope();
        return Run(z, WholeLayers.Instance).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The decoder's layer order, written once: the whole decode (<see cref="forward"/>) and the tiled one
    /// (<see cref="TiledLayers"/>) differ only in how each layer runs. The caller's latent is left alone.
    /// </summary>
    internal Tensor Run(Tensor z, IDecoderLayers layers)
    {
        var x = conv_in.call(z);
        x = Stages.Next(x, mid_block.Run(x, layers.QueryChunk));
        x = layers.Park(x);
        foreach (var block in up_blocks) x = Stages.Next(x, block.Run(x, layers));
        return layers.Out(conv_norm_out, conv_out, x);
    }
}

/// <summary>How the decoder's layers run: whole (<see cref="WholeLayers"/>) or tile by tile (<see cref="TiledLayers"/>).</summary>
internal interface IDecoderLayers
{
    /// <summary>Queries the mid block's attention takes at a time.</summary>
    long QueryChunk { get; }

    /// <summary>Where the whole activation waits between the up blocks' layers; may move it (the old one is disposed).</summary>
    Tensor Park(Tensor x);

    Tensor Resnet(ResnetBlock2D block, Tensor x);

    Tensor Upsample(Upsample2D upsampler, Tensor x);

    /// <summary>norm, SiLU, conv_out; disposes <paramref name="x"/> as soon as it is no longer needed.</summary>
    Tensor Out(VaeGroupNorm norm, VaeConv2d conv, Tensor x);
}

/// <summary>Every layer over the whole activation: the modules' own forwards.</summary>
internal sealed class WholeLayers : IDecoderLayers
{
    public static WholeLayers Instance { get; } = new();

    public long QueryChunk => long.MaxValue;

    public Tensor Park(Tensor x) => x;

    public Tensor Resnet(ResnetBlock2D block, Tensor x) => block.call(x);

    public Tensor Upsample(Upsample2D upsampler, Tensor x) => upsampler.call(x);

    public Tensor Out(VaeGroupNorm norm, VaeConv2d conv, Tensor x)
    {
        using var normed = Stages.Next(x, norm.call(x));
        return conv.call(normed.silu_());
    }
}

/// <summary>
/// A dispose scope frees everything at the end of a forward; at 1024² every activation of the last up block is
/// 128 × 1024² values, so stacked layers hand each intermediate back as soon as the next one exists, as PyTorch's
/// reference counting would.
/// </summary>
internal static class Stages
{
    public static Tensor Next(Tensor previous, Tensor next)
    {
        previous.Dispose();
        return next;
    }
}

/// <summary>GroupNorm computed in float32 whatever the weights' dtype: bf16 statistics over 128×1024² values are too coarse.</summary>
internal sealed class VaeGroupNorm : nn.Module<Tensor, Tensor>
{
    internal readonly Parameter weight;
    internal readonly Parameter bias;
    private readonly long _groups;
    private readonly double _eps;

    public VaeGroupNorm(long groups, long channels, double eps, Device device, ScalarType dtype) : base(nameof(VaeGroupNorm))
    {
        _groups = groups;
        _eps = eps;
        weight = nn.Parameter(torch.ones(channels, dtype, device), requires_grad: false);
        bias = nn.Parameter(torch.zeros(channels, dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var y = F.group_norm(x.to(ScalarType.Float32), _groups, weight.to(ScalarType.Float32), bias.to(ScalarType.Float32), _eps);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }

    internal long Groups => _groups;
    internal double Eps => _eps;

    /// <summary>The norm with given per-(batch, group) mean and 1/σ, [B, G] each: for tiles of a larger tensor.</summary>
    internal Tensor Normalize(Tensor x, GroupStats stats)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], c = x.shape[1];
        var g = x.to(ScalarType.Float32).reshape(b, _groups, -1);
        g = (g - stats.Mean.unsqueeze(-1)) * stats.Rstd.unsqueeze(-1);
        var y = g.reshape(x.shape) * weight.to(ScalarType.Float32).reshape(1, c, 1, 1) + bias.to(ScalarType.Float32).reshape(1, c, 1, 1);
        return y.to(x.dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>GroupNorm mean and 1/σ per (batch, group), [B, G] each, in float32.</summary>
internal sealed record GroupStats(Tensor Mean, Tensor Rstd) : IDisposable
{
    public void Dispose()
    {
        Mean.Dispose();
        Rstd.Dispose();
    }
}

/// <summary>
/// A stride-1 convolution with "same" padding whose parameters are allocated uninitialised on their final device and
/// dtype: every weight is loaded or drawn by CreateRandom, and TorchSharp's nn.Conv2d would first Kaiming-initialise
/// on the CPU. <paramref name="computeInFloat32"/> upcasts input and weights (used for conv_out, see there).
/// </summary>
internal sealed class VaeConv2d : nn.Module<Tensor, Tensor>
{
    internal readonly Parameter weight;
    internal readonly Parameter bias;
    private readonly long _padding;
    private readonly bool _float32;

    public VaeConv2d(long inChannels, long outChannels, long kernel, Device device, ScalarType dtype, bool computeInFloat32 = false)
        : base(nameof(VaeConv2d))
    {
        _padding = kernel / 2;
        _float32 = computeInFloat32;
        weight = nn.Parameter(torch.empty([outChannels, inChannels, kernel, kernel], dtype, device), requires_grad: false);
        bias = nn.Parameter(torch.empty([outChannels], dtype, device), requires_grad: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!_float32) return F.conv2d(x, weight, bias, padding: [_padding, _padding]);
        using var scope = torch.NewDisposeScope();
        var y = F.conv2d(x.to(ScalarType.Float32), weight.to(ScalarType.Float32), bias.to(ScalarType.Float32), padding: [_padding, _padding]);
        return y.MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers <c>ResnetBlock2D</c> (flux <c>ResnetBlock</c>): two norm-SiLU-conv steps plus a (1×1-projected) skip.</summary>
internal sealed class ResnetBlock2D : nn.Module<Tensor, Tensor>
{
    internal readonly VaeGroupNorm norm1;
    internal readonly VaeConv2d conv1;
    internal readonly VaeGroupNorm norm2;
    internal readonly VaeConv2d conv2;
    internal readonly VaeConv2d? conv_shortcut;

    public ResnetBlock2D(int inChannels, int outChannels, VaeConfig c, Device device, ScalarType dtype) : base(nameof(ResnetBlock2D))
    {
        norm1 = new VaeGroupNorm(c.NormNumGroups, inChannels, c.NormEps, device, dtype);
        conv1 = new VaeConv2d(inChannels, outChannels, 3, device, dtype);
        norm2 = new VaeGroupNorm(c.NormNumGroups, outChannels, c.NormEps, device, dtype);
        conv2 = new VaeConv2d(outChannels, outChannels, 3, device, dtype);
        if (inChannels != outChannels) conv_shortcut = new VaeConv2d(inChannels, outChannels, 1, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var h = norm1.call(x);
        h = Stages.Next(h, conv1.call(h.silu_()));
        h = Stages.Next(h, norm2.call(h));
        h = Stages.Next(h, conv2.call(h.silu_()));
        if (conv_shortcut is null) h.add_(x);
        else using (var skip = conv_shortcut.call(x)) h.add_(skip);
        return h.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// diffusers <c>Attention</c> as the VAE uses it: GroupNorm, one head over all channels (scale 1/√C), Linear
/// projections (flux's 1×1 convs, converted in the checkpoint), residual added.
/// </summary>
internal sealed class VaeAttention : nn.Module<Tensor, Tensor>
{
    internal readonly VaeGroupNorm group_norm;
    internal readonly Modules.Linear to_q;
    internal readonly Modules.Linear to_k;
    internal readonly Modules.Linear to_v;
    internal readonly ModuleList<Modules.Linear> to_out = new();

    public VaeAttention(int channels, VaeConfig c, Device device, ScalarType dtype) : base(nameof(VaeAttention))
    {
        group_norm = new VaeGroupNorm(c.NormNumGroups, channels, c.NormEps, device, dtype);
        to_q = new Modules.Linear(channels, channels, hasBias: true, device, dtype);
        to_k = new Modules.Linear(channels, channels, hasBias: true, device, dtype);
        to_v = new Modules.Linear(channels, channels, hasBias: true, device, dtype);
        to_out.Add(new Modules.Linear(channels, channels, hasBias: true, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Attend(x, long.MaxValue);

    /// <summary>
    /// The block, with queries taken <paramref name="queryChunk"/> positions at a time: rows of attention are independent,
    /// so chunking changes nothing but the size of the score matrix (16384² at 1024² pixels if SDPA falls back to math).
    /// </summary>
    internal Tensor Attend(Tensor x, long queryChunk)
    {
        using var scope = torch.NewDisposeScope();
        long b = x.shape[0], ch = x.shape[1], h = x.shape[2], w = x.shape[3];
        // (B, C, H, W) -> (B, H·W, C)
        var seq = group_norm.call(x).reshape(b, ch, h * w).transpose(1, 2);
        // (B, H·W, C) -> (B, 1, H·W, C): a single head whose width is C, so SDPA's default scale is 1/√C.
        var q = to_q.call(seq).unsqueeze(1);
        var k = to_k.call(seq).unsqueeze(1);
        var v = to_v.call(seq).unsqueeze(1);
        var chunks = new List<Tensor>();
        for (long start = 0; start < h * w; start += queryChunk)
            chunks.Add(F.scaled_dot_product_attention(q.narrow(2, start, Math.Min(queryChunk, h * w - start)), k, v));
        var o = torch.cat(chunks, dim: 2).squeeze(1);
        o = to_out[0].call(o).transpose(1, 2).reshape(b, ch, h, w);
        return (o + x).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers <c>UNetMidBlock2D</c>: resnet, (attention, resnet) once.</summary>
internal sealed class UNetMidBlock2D : nn.Module<Tensor, Tensor>
{
    internal readonly ModuleList<ResnetBlock2D> resnets = new();
    internal readonly ModuleList<VaeAttention> attentions = new();

    public UNetMidBlock2D(int channels, VaeConfig c, Device device, ScalarType dtype) : base(nameof(UNetMidBlock2D))
    {
        resnets.Add(new ResnetBlock2D(channels, channels, c, device, dtype));
        if (c.MidBlockAddAttention) attentions.Add(new VaeAttention(channels, c, device, dtype));
        resnets.Add(new ResnetBlock2D(channels, channels, c, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return Run(x, long.MaxValue).MoveToOuterDisposeScope();
    }

    /// <summary>The block at latent resolution, where it is small: whole even in a tiled decode, only the attention chunked.</summary>
    internal Tensor Run(Tensor x, long queryChunk)
    {
        var h = resnets[0].call(x);
        foreach (var attention in attentions) h = Stages.Next(h, attention.Attend(h, queryChunk));
        return Stages.Next(h, resnets[1].call(h));
    }
}

/// <summary>diffusers <c>UpDecoderBlock2D</c>: layers_per_block + 1 resnets, then nearest ×2 and a 3×3 conv (all but the last block).</summary>
internal sealed class UpDecoderBlock2D : nn.Module<Tensor, Tensor>
{
    internal readonly ModuleList<ResnetBlock2D> resnets = new();
    internal readonly ModuleList<Upsample2D> upsamplers = new();

    public UpDecoderBlock2D(int inChannels, int outChannels, VaeConfig c, bool addUpsample, Device device, ScalarType dtype) : base(nameof(UpDecoderBlock2D))
    {
        for (int i = 0; i <= c.LayersPerBlock; i++)
            resnets.Add(new ResnetBlock2D(i == 0 ? inChannels : outChannels, outChannels, c, device, dtype));
        if (addUpsample) upsamplers.Add(new Upsample2D(outChannels, device, dtype));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        return Run(x, WholeLayers.Instance).MoveToOuterDisposeScope();
    }

    internal Tensor Run(Tensor x, IDecoderLayers layers)
    {
        // The block's input belongs to the caller; only what this block made is disposed early.
        var h = layers.Resnet(resnets[0], x);
        foreach (var resnet in resnets.Skip(1)) h = Stages.Next(h, layers.Resnet(resnet, h));
        foreach (var upsampler in upsamplers) h = Stages.Next(h, layers.Upsample(upsampler, h));
        return h;
    }
}

/// <summary>diffusers <c>Upsample2D</c> with use_conv: nearest-neighbour ×2, then a 3×3 conv.</summary>
internal sealed class Upsample2D : nn.Module<Tensor, Tensor>
{
    internal readonly VaeConv2d conv;

    public Upsample2D(int channels, Device device, ScalarType dtype) : base(nameof(Upsample2D))
    {
        conv = new VaeConv2d(channels, channels, 3, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        using var up = F.interpolate(x, scale_factor: [2.0, 2.0], mode: InterpolationMode.Nearest);
        return conv.call(up).MoveToOuterDisposeScope();
    }
}
