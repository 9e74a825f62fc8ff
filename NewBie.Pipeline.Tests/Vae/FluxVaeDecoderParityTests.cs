using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using static NewBie.Pipeline.Tests.Vae.VaeTestData;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Vae;

/// <summary>
/// The decoder against the upstream flux <c>Decoder</c> run on the tiny fixture (fixtures/vae/README.md). Shapes and
/// settings come from the fixture's config.json; device and dtype from <see cref="Parity"/>.
/// </summary>
[Trait("Category", "Parity")]
public sealed class FluxVaeDecoderParityTests
{
    public static TheoryData<string> VaeFixtures => Fixtures.Folders("vae");

    private static FluxVaeDecoder LoadFixture(string dir) =>
        FluxVaeDecoder.Load(Path.Combine(dir, "weights.safetensors"), VaeConfig.FromFile(Path.Combine(dir, "config.json")), Parity.Device, Parity.DType);

    private static Tensor Latent(string dir) => Parity.Input(Read(Inputs(dir), "latent"));

    private static string Inputs(string dir) => Path.Combine(dir, "inputs.safetensors");
    private static string Expected(string dir) => Path.Combine(dir, "expected.safetensors");

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Fixture_config_reads_as_the_diffusers_decoder_shape(string dir)
    {
        var config = VaeConfig.FromFile(Path.Combine(dir, "config.json"));
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "config.json")));
        var root = doc.RootElement;
        var flux = root.GetProperty("decoder");
        int ch = flux.GetProperty("ch").GetInt32();
        Assert.Equal(flux.GetProperty("ch_mult").EnumerateArray().Select(m => ch * m.GetInt32()), config.BlockOutChannels);
        Assert.Equal(flux.GetProperty("num_res_blocks").GetInt32(), config.LayersPerBlock);
        Assert.Equal(flux.GetProperty("z_channels").GetInt32(), config.LatentChannels);
        Assert.Equal(flux.GetProperty("out_ch").GetInt32(), config.OutChannels);
        Assert.Equal(root.GetProperty("scaling_factor").GetDouble(), config.ScalingFactor);
        Assert.Equal(root.GetProperty("shift_factor").GetDouble(), config.ShiftFactor);
        var latent = root.GetProperty("latent_shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var image = root.GetProperty("image_shape_nchw").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal(image[2] / latent[2], config.SpatialFactor);
    }

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Module_keys_are_exactly_the_fixture_checkpoint_keys(string dir)
    {
        using var vae = new FluxVaeDecoder(VaeConfig.FromFile(Path.Combine(dir, "config.json")));
        using var file = NewBie.Pipeline.Weights.SafetensorsFile.Open(Path.Combine(dir, "weights.safetensors"));
        Assert.Equal(file.Tensors.Keys.Order(StringComparer.Ordinal), vae.state_dict().Keys.Order(StringComparer.Ordinal));
    }

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Decoder_input_is_latent_divided_by_scaling_plus_shift(string dir)
    {
        using var vae = LoadFixture(dir);
        using var latent = Latent(dir);
        using var expected = Read(Expected(dir), "decoder_input");
        using var actual = vae.DecoderInput(latent);
        AssertClose(expected, actual, "decoder_input");
    }

    /// <summary>Each block is fed the upstream input of that block, so a mismatch points at the block itself.</summary>
    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Every_block_matches_the_upstream_intermediate(string dir)
    {
        using var vae = LoadFixture(dir);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var d = vae.decoder;
        Tensor E(string name) => Parity.Input(Read(Expected(dir), name));
        void Check(string name, Tensor actual) => AssertClose(E("intermediate." + name), actual, name);

        Check("conv_in", d.conv_in.call(E("decoder_input")));
        Check("mid_block.resnets.0", d.mid_block.resnets[0].call(E("intermediate.conv_in")));
        Check("mid_block.attentions.0", d.mid_block.attentions[0].call(E("intermediate.mid_block.resnets.0")));
        Check("mid_block.resnets.1", d.mid_block.resnets[1].call(E("intermediate.mid_block.attentions.0")));
        var input = "intermediate.mid_block.resnets.1";
        for (int i = 0; i < d.up_blocks.Count; i++)
        {
            for (int j = 0; j < d.up_blocks[i].resnets.Count; j++)
            {
                var name = $"up_blocks.{i}.resnets.{j}";
                Check(name, d.up_blocks[i].resnets[j].call(E(input)));
                input = "intermediate." + name;
            }
            if (d.up_blocks[i].upsamplers.Count > 0)
            {
                var name = $"up_blocks.{i}.upsamplers.0";
                Check(name, d.up_blocks[i].upsamplers[0].call(E(input)));
                input = "intermediate." + name;
            }
        }
        Check("conv_norm_out", d.conv_norm_out.call(E(input)));
    }

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Decoded_output_matches_upstream(string dir)
    {
        using var vae = LoadFixture(dir);
        using var latent = Latent(dir);
        using var expected = Read(Expected(dir), "decoded");
        using var decoded = vae.Decode(latent);
        Assert.Equal(ScalarType.Float32, decoded.dtype);
        AssertClose(expected, decoded, "decoded");
    }

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Image_bytes_match_upstream_rounding_and_truncation(string dir)
    {
        using var vae = LoadFixture(dir);
        using var latent = Latent(dir);
        using var reference = Read(Expected(dir), "decoded");
        using var decoded = vae.Decode(latent);
        using var unrounded = ((reference + 1) / 2).clamp(0.0, 1.0) * 255;

        using var rounded = FluxVaeDecoder.ToImageBytes(decoded, PixelRounding.Round);
        AssertBytes(Read(Expected(dir), "image_uint8"), rounded, unrounded, boundaryOffset: 0.5, "image_uint8");
        using var truncated = FluxVaeDecoder.ToImageBytes(decoded, PixelRounding.Truncate);
        AssertBytes(Read(Expected(dir), "image_uint8_trunc"), truncated, unrounded, boundaryOffset: 0.0, "image_uint8_trunc");

        // ToRgb is the same bytes, one H × W × 3 array per image.
        var rgb = FluxVaeDecoder.ToRgb(decoded);
        Assert.Equal(rounded.shape[0], rgb.Length);
        for (var i = 0; i < rgb.Length; i++) Assert.Equal(rounded[i].contiguous().bytes.ToArray(), rgb[i]);
    }

    /// <summary>Exact, except a difference of 1 where the unrounded ×255 value lies within 1e-3 of a rounding boundary (README).</summary>
    private static void AssertBytes(Tensor expected, Tensor actual, Tensor unroundedNchw, double boundaryOffset, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var scope = NewDisposeScope();
        var diff = (actual.to(ScalarType.Int32) - expected.to(ScalarType.Int32)).abs();
        var u = unroundedNchw.permute(0, 2, 3, 1);
        var nearBoundary = ((u - boundaryOffset) - (u - boundaryOffset).round()).abs() < 1e-3;
        var bad = (diff > 1) | ((diff == 1) & ~nearBoundary);
        Assert.True(bad.sum().item<long>() == 0, $"{what}: {bad.sum().item<long>()} bytes differ beyond the allowance");
    }

    // Measured on this fixture (CPU, float32): tiles of 2 latent cells on the 6×10 latent give max |tiled − full| =
    // 1.55e-6 and mean 3.2e-7; a 2×16×24×40 random latent in tiles of 8 gives max 3.9e-6, mean 6.5e-7. Only float
    // rounding differs (float64 GroupNorm sums, other conv shapes), against max 1.4 / mean 0.32 (on [-1, 1]) for
    // diffusers-style blended tiles with per-tile norms and attention on the same 6×10 latent (tile 4, overlap 2; measured
    // with the first version of this code). The bounds leave about 5× headroom for other CPUs' conv kernels.
    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Tiled_decode_agrees_with_the_full_decode(string dir)
    {
        using var vae = LoadFixture(dir);
        using var latent = Latent(dir);
        using var full = vae.Decode(latent);
        using var tiled = vae.Decode(latent, new VaeTiling(TileLatentSize: 2));
        Assert.Equal(full.shape, tiled.shape);
        var (max, mean) = Diff(full, tiled);
        Assert.True(max < 2e-5 && mean < 2e-6, $"tile 2 on [{string.Join(", ", latent.shape)}]: max {max:G4}, mean {mean:G4}");

        using var large = SeededRandom.Normal(7, [2, latent.shape[1], 24, 40], Parity.Device, Parity.DType);
        using var fullLarge = vae.Decode(large);
        using var tiledLarge = vae.Decode(large, new VaeTiling(TileLatentSize: 8));
        Assert.Equal(fullLarge.shape, tiledLarge.shape);
        var (maxL, meanL) = Diff(fullLarge, tiledLarge);
        Assert.True(maxL < 2e-5 && meanL < 2e-6, $"tile 8 on 2×24×40: max {maxL:G4}, mean {meanL:G4}");
    }

    [FixtureTheory("vae"), MemberData(nameof(VaeFixtures))]
    public void Tiled_decode_runs_the_full_resolution_layers_on_tiles_only(string dir)
    {
        using var vae = LoadFixture(dir);
        using var latent = Latent(dir);
        var inputs = new List<long[]>();
        vae.decoder.conv_out.register_forward_hook((module, input, output) =>
        {
            inputs.Add(input.shape);
            return output;
        });

        var config = VaeConfig.FromFile(Path.Combine(dir, "config.json"));
        long factor = config.SpatialFactor, height = latent.shape[2] * factor, width = latent.shape[3] * factor;

        using (vae.Decode(latent)) { }
        Assert.Equal([[latent.shape[0], config.BlockOutChannels[0], height, width]], inputs);

        inputs.Clear();
        const int tile = 2;
        using (vae.Decode(latent, new VaeTiling(TileLatentSize: tile))) { }
        // Tiles of 2 latent cells = 2·factor pixels, each with at most one pixel of border per side.
        long tilePixels = tile * factor, tiles = (height + tilePixels - 1) / tilePixels * ((width + tilePixels - 1) / tilePixels);
        Assert.Equal(tiles, inputs.Count);
        Assert.All(inputs, shape => Assert.True(shape[2] <= tilePixels + 2 && shape[3] <= tilePixels + 2, $"tile input [{string.Join(", ", shape)}]"));
    }
}
