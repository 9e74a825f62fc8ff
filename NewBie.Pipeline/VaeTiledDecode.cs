using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace NewBie.Pipeline;

/// <summary>
/// Tiled decoding for when the full decode does not fit. conv_in and the mid block run whole at latent resolution,
/// where they are small (the attention takes a tile's worth of queries at a time). Every later layer runs over square
/// tiles of <paramref name="TileLatentSize"/> latent cells (×2 pixels per upsampling so far), each cut with a one-pixel
/// border (the 3×3 convs' reach) that is cropped afterwards, while the whole activations wait in host memory between
/// layers. GroupNorm statistics are summed over all tiles before each norm, so nothing is approximated and no seams need
/// blending: diffusers' <c>tiled_decode</c> normalises and attends per tile and differs visibly from the full decode,
/// this agrees with it to float rounding (numbers in FluxVaeDecoderParityTests and the README). The price is one trip
/// through host memory per layer.
/// </summary>
public sealed record VaeTiling(int TileLatentSize = 32)
{
    /// <summary>256-pixel tiles for the FLUX VAE: at most 128 channels × 258² at full resolution on the device per step.</summary>
    public static VaeTiling Default { get; } = new();

    public void Validate()
    {
        if (TileLatentSize < 1) throw new ArgumentException($"tile size {TileLatentSize} must be positive");
    }
}

/// <summary>
/// Runs the decoder's spatially local layers tile by tile (see <see cref="VaeTiling"/>). Whole activations live on
/// the storage device (host memory); only a tile plus its one-pixel border is on the compute device at a time.
/// </summary>
internal sealed class TiledLayers(Device compute, Device storage, int tileLatentSize, long latentHeight) : IDecoderLayers
{
    /// <summary>Tiled layers for a latent of <paramref name="latentHeight"/> rows decoded on <paramref name="compute"/>.</summary>
    public static TiledLayers For(VaeTiling tiling, Device compute, long latentHeight)
    {
        tiling.Validate();
        // Whole activations wait in host memory between layers (on a CPU run that is where they already are).
        return new TiledLayers(compute, torch.CPU, tiling.TileLatentSize, latentHeight);
    }

    public long QueryChunk => (long)tileLatentSize * tileLatentSize;

    public Tensor Park(Tensor x)
    {
        var parked = x.to(storage);
        if (!ReferenceEquals(parked, x)) x.Dispose();
        return parked;
    }

    public Tensor Out(VaeGroupNorm norm, VaeConv2d conv, Tensor x)
    {
        using var stats = Stats(x, norm);
        using (x)
            return Map([x], 1, 1, t => conv.call(F.silu(norm.Normalize(t[0], stats))));
    }

    /// <summary>
    /// Applies <paramref name="op"/> to same-sized inputs tile by tile. Tiles are <c>tileLatentSize</c> cells scaled to the
    /// inputs' resolution, cut with <paramref name="halo"/> extra pixels so the op's zero padding touches only the border,
    /// which is then cropped; <paramref name="scale"/> is the op's output size per input pixel.
    /// </summary>
    public Tensor Map(Tensor[] inputs, int halo, int scale, Func<Tensor[], Tensor> op)
    {
        long height = inputs[0].shape[2], width = inputs[0].shape[3];
        long tile = TileSize(inputs[0]);
        Tensor? output = null;
        for (long r0 = 0; r0 < height; r0 += tile)
        {
            for (long c0 = 0; c0 < width; c0 += tile)
            {
                using var scope = torch.NewDisposeScope();
                long r1 = Math.Min(r0 + tile, height), c1 = Math.Min(c0 + tile, width);
                long a0 = Math.Max(r0 - halo, 0), a1 = Math.Min(r1 + halo, height);
                long b0 = Math.Max(c0 - halo, 0), b1 = Math.Min(c1 + halo, width);
                var cut = inputs.Select(x => x[.., .., TensorIndex.Slice(a0, a1), TensorIndex.Slice(b0, b1)].to(compute)).ToArray();
                var y = op(cut).narrow(2, (r0 - a0) * scale, (r1 - r0) * scale).narrow(3, (c0 - b0) * scale, (c1 - c0) * scale);
                if (output is null)
                {
                    output = torch.empty([y.shape[0], y.shape[1], height * scale, width * scale], y.dtype, storage);
                    output.MoveToOuterDisposeScope();
                }
                output.narrow(2, r0 * scale, (r1 - r0) * scale).narrow(3, c0 * scale, (c1 - c0) * scale).copy_(y);
            }
        }
        return output!;
    }

    /// <summary>GroupNorm mean and 1/σ per (batch, group) over the whole tensor, summed tile by tile in float64.</summary>
    public GroupStats Stats(Tensor x, VaeGroupNorm norm)
    {
        using var outer = torch.NewDisposeScope();
        long batch = x.shape[0], height = x.shape[2], width = x.shape[3];
        long tile = TileSize(x);
        var sum = torch.zeros([batch, norm.Groups], ScalarType.Float64, compute);
        var squares = torch.zeros([batch, norm.Groups], ScalarType.Float64, compute);
        for (long r0 = 0; r0 < height; r0 += tile)
        {
            for (long c0 = 0; c0 < width; c0 += tile)
            {
                using var scope = torch.NewDisposeScope();
                var t = x[.., .., TensorIndex.Slice(r0, Math.Min(r0 + tile, height)), TensorIndex.Slice(c0, Math.Min(c0 + tile, width))]
                    .to(ScalarType.Float64, compute).reshape(batch, norm.Groups, -1);
                sum.add_(t.sum(-1));
                squares.add_(t.square().sum(-1));
            }
        }
        double count = x.shape[1] / norm.Groups * height * width;
        var mean = sum / count;
        var variance = squares / count - mean.square();
        return new GroupStats(mean.to(ScalarType.Float32).MoveToOuterDisposeScope(),
            (variance + norm.Eps).rsqrt().to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    public Tensor Resnet(ResnetBlock2D block, Tensor x)
    {
        using var s1 = Stats(x, block.norm1);
        var h = Map([x], 1, 1, t => block.conv1.call(F.silu(block.norm1.Normalize(t[0], s1))));
        using var s2 = Stats(h, block.norm2);
        using (h)
            return Map([h, x], 1, 1, t =>
                block.conv2.call(F.silu(block.norm2.Normalize(t[0], s2))) + (block.conv_shortcut is null ? t[1] : block.conv_shortcut.call(t[1])));
    }

    /// <summary>Nearest ×2 then a 3×3 conv: a one-pixel border before upsampling is two after it, enough for the conv.</summary>
    public Tensor Upsample(Upsample2D upsampler, Tensor x) => Map([x], 1, 2, t => upsampler.call(t[0]));

    /// <summary>Tile edge in pixels at this tensor's resolution: the latent tile size times the upsampling done so far.</summary>
    private long TileSize(Tensor x) => tileLatentSize * (x.shape[2] / latentHeight);
}
