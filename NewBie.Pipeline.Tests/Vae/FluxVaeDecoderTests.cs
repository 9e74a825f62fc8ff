using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using static NewBie.Pipeline.Tests.Vae.VaeTestData;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Vae;

/// <summary>Decoder behaviour that needs no fixture: structure, loading, random init, pixel conversion.</summary>
public sealed class FluxVaeDecoderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("newbie-vae-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A checkpoint holding a random tiny decoder's tensors, changed by <paramref name="edit"/>.</summary>
    private string SaveTiny(Action<Dictionary<string, Tensor>>? edit = null)
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 1);
        var tensors = vae.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        edit?.Invoke(tensors);
        var path = Path.Combine(_dir, "diffusion_pytorch_model.safetensors");
        SafetensorsWriter.Write(path, tensors);
        return path;
    }

    [Fact]
    public void Released_config_has_the_flux_vae_key_names_and_shapes()
    {
        using var vae = new FluxVaeDecoder(VaeConfig.FluxVae, dtype: ScalarType.BFloat16);
        var shapes = vae.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal([512, 16, 3, 3], shapes["decoder.conv_in.weight"]);
        Assert.Equal([512, 512], shapes["decoder.mid_block.attentions.0.to_out.0.weight"]);
        Assert.Equal([512, 512, 3, 3], shapes["decoder.up_blocks.0.upsamplers.0.conv.weight"]);
        Assert.Equal([256, 512, 1, 1], shapes["decoder.up_blocks.2.resnets.0.conv_shortcut.weight"]);
        Assert.Equal([128, 256, 1, 1], shapes["decoder.up_blocks.3.resnets.0.conv_shortcut.weight"]);
        Assert.Equal([128, 128, 3, 3], shapes["decoder.up_blocks.3.resnets.2.conv2.weight"]);
        Assert.Equal([3, 128, 3, 3], shapes["decoder.conv_out.weight"]);
        Assert.DoesNotContain(shapes.Keys, k => k.StartsWith("decoder.up_blocks.3.upsamplers", StringComparison.Ordinal));
        Assert.DoesNotContain(shapes.Keys, k => k.Contains("resnets.3", StringComparison.Ordinal));
        // Counted by hand from diffusers' Decoder layout for these channels (not from this code).
        Assert.Equal(138, shapes.Count);
        Assert.Equal(49_545_475, shapes.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)));
        Assert.Equal(8, VaeConfig.FluxVae.SpatialFactor);
    }

    [Fact]
    public void Load_ignores_the_encoder_half_of_a_full_autoencoder_checkpoint()
    {
        var path = SaveTiny(t =>
        {
            t["encoder.conv_in.weight"] = zeros(16, 3, 3, 3);
            t["quant_conv.weight"] = zeros(32, 32, 1, 1);
        });
        using var loaded = FluxVaeDecoder.Load(_dir, VaeConfig.Tiny);
        using var original = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 1);
        foreach (var (key, value) in original.state_dict())
            Assert.True(Same(value, loaded.state_dict()[key]), key);
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void Load_refuses_a_missing_tensor_and_names_it()
    {
        var path = SaveTiny(t => t.Remove("decoder.up_blocks.1.resnets.0.conv2.bias"));
        var ex = Assert.Throws<WeightLoadException>(() => FluxVaeDecoder.Load(path, VaeConfig.Tiny));
        Assert.Contains("missing (1): decoder.up_blocks.1.resnets.0.conv2.bias", ex.Message);
        Assert.Contains("FLUX VAE decoder", ex.Message);
    }

    [Fact]
    public void Load_refuses_a_misshaped_tensor_and_names_it()
    {
        var path = SaveTiny(t => t["decoder.conv_in.weight"] = zeros(32, 4, 3, 3));
        var ex = Assert.Throws<WeightLoadException>(() => FluxVaeDecoder.Load(path, VaeConfig.Tiny));
        Assert.Contains("decoder.conv_in.weight: checkpoint [32, 4, 3, 3], expected [32, 16, 3, 3]", ex.Message);
    }

    [Fact]
    public void Load_refuses_a_post_quant_conv_it_would_not_apply()
    {
        var path = SaveTiny(t => t["post_quant_conv.weight"] = zeros(16, 16, 1, 1));
        var ex = Assert.Throws<WeightLoadException>(() => FluxVaeDecoder.Load(path, VaeConfig.Tiny));
        Assert.Contains("unexpected (1): post_quant_conv.weight", ex.Message);
    }

    [Fact]
    public void Random_init_depends_only_on_the_seed()
    {
        using var a = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 5);
        using var b = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 5);
        using var c = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 6);
        var sa = a.state_dict();
        Assert.All(b.state_dict(), kv => Assert.True(Same(kv.Value, sa[kv.Key]), kv.Key));
        Assert.False(Same(c.state_dict()["decoder.conv_out.weight"], sa["decoder.conv_out.weight"]));
    }

    [Fact]
    public void Tiny_model_decodes_to_eight_pixels_per_latent_cell_in_a_sensible_range()
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 3);
        using var latent = SeededRandom.Normal(11, [1, 16, 4, 6]);
        using var decoded = vae.Decode(latent);
        Assert.Equal([1, 3, 32, 48], decoded.shape);
        Assert.True(decoded.isfinite().all().item<bool>());
        var std = decoded.std().item<float>();
        Assert.InRange(std, 0.05f, 5f);
        var rgb = FluxVaeDecoder.ToRgb(decoded);
        Assert.Equal(32 * 48 * 3, rgb[0].Length);
    }

    /// <summary>
    /// bf16 weights and activations, as on CUDA. Measured here: max 0.045, mean 0.008. Before conv_out was computed in
    /// float32 this was max 1.9, mean 0.25 (libtorch's CPU bf16 conv is wrong for 3 output channels).
    /// </summary>
    [Fact]
    public void Bfloat16_decode_stays_close_to_float32()
    {
        using var vae32 = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 3);
        using var vae16 = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 3, dtype: ScalarType.BFloat16);
        using var latent = SeededRandom.Normal(12, [1, 16, 4, 4]);
        using var a = vae32.Decode(latent);
        using var b = vae16.Decode(latent);
        Assert.Equal(ScalarType.Float32, b.dtype);
        var (max, mean) = Diff(a, b);
        Assert.True(max < 0.15 && mean < 0.03, $"bf16 vs fp32: max {max:G3}, mean {mean:G3}");
    }

    [Fact]
    public void Tiled_decode_of_the_tiny_model_matches_its_full_decode()
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 4);
        using var latent = SeededRandom.Normal(13, [1, 16, 5, 7]);
        using var full = vae.Decode(latent);
        using var tiled = vae.Decode(latent, new VaeTiling(TileLatentSize: 2));
        var (max, _) = Diff(full, tiled);
        Assert.True(max < 2e-5, $"max {max:G3}");
    }

    /// <summary>
    /// When the last conv runs, the earlier stages' outputs must already be gone (only the latent copy and the conv's
    /// input remain), not held until the decode returns: at 1024² each of them is 128 × 1024² values.
    /// </summary>
    [Fact]
    public void Intermediate_activations_are_freed_before_the_next_stage_finishes()
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 2);
        using var latent = zeros(1, 16, 2, 2);
        long atConvOut = -1;
        vae.decoder.conv_out.register_forward_pre_hook((module, input) =>
        {
            atConvOut = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            return input;
        });
        var before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (vae.Decode(latent)) { }
        Assert.InRange(atConvOut - before, 0, 2);
    }

    /// <summary>The tiled path keeps only the current whole activation (and its GroupNorm statistics) between layers.</summary>
    [Fact]
    public void Tiled_decode_frees_each_whole_activation_once_the_next_exists()
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 2);
        using var latent = zeros(1, 16, 4, 4);
        long atFirstTile = -1;
        vae.decoder.conv_out.register_forward_pre_hook((module, input) =>
        {
            if (atFirstTile < 0) atFirstTile = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
            return input;
        });
        var before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (vae.Decode(latent, new VaeTiling(TileLatentSize: 2))) { }
        Assert.InRange(atFirstTile - before, 0, 9);
    }

    [Fact]
    public void Decode_rejects_a_latent_without_sixteen_channels()
    {
        using var vae = FluxVaeDecoder.CreateRandom(VaeConfig.Tiny, seed: 1);
        using var latent = zeros(1, 4, 8, 8);
        var ex = Assert.Throws<ArgumentException>(() => vae.Decode(latent));
        Assert.Contains("[B, 16, h, w]", ex.Message);
    }

    [Fact]
    public void Pixels_are_clamped_and_laid_out_row_major_rgb()
    {
        // decoded [1, 3, 1, 2]: pixel 0 = (-1, 1, 3), pixel 1 = (0, -2, 1)
        using var decoded = tensor(new float[] { -1, 0, 1, -2, 3, 1 }).reshape(1, 3, 1, 2);
        var rgb = FluxVaeDecoder.ToRgb(decoded);
        // (0 + 1) / 2 · 255 = 127.5: torch.round goes to the even 128, truncation to 127.
        Assert.Equal(new byte[] { 0, 255, 255, 128, 0, 255 }, rgb[0]);
        Assert.Equal(new byte[] { 0, 255, 255, 127, 0, 255 }, FluxVaeDecoder.ToRgb(decoded, PixelRounding.Truncate)[0]);
    }
}
