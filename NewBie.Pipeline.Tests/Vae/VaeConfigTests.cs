using NewBie.Pipeline.Configs;

namespace NewBie.Pipeline.Tests.Vae;

public sealed class VaeConfigTests
{
    /// <summary>black-forest-labs/FLUX.1-dev vae/config.json, as diffusers writes it.</summary>
    private const string FluxDiffusersConfig = """
        {
          "_class_name": "AutoencoderKL",
          "_diffusers_version": "0.30.0.dev0",
          "act_fn": "silu",
          "block_out_channels": [128, 256, 512, 512],
          "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
          "force_upcast": true,
          "in_channels": 3,
          "latent_channels": 16,
          "latents_mean": null,
          "latents_std": null,
          "layers_per_block": 2,
          "mid_block_add_attention": true,
          "norm_num_groups": 32,
          "out_channels": 3,
          "sample_size": 1024,
          "scaling_factor": 0.3611,
          "shift_factor": 0.1159,
          "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
          "use_post_quant_conv": false,
          "use_quant_conv": false
        }
        """;

    [Fact]
    public void Diffusers_config_of_the_released_vae_reads_as_the_FluxVae_preset()
    {
        var config = VaeConfig.FromJson(FluxDiffusersConfig);
        var preset = VaeConfig.FluxVae;
        Assert.Equal(preset.BlockOutChannels, config.BlockOutChannels);
        Assert.Equal(preset with { BlockOutChannels = config.BlockOutChannels }, config);
    }

    [Fact]
    public void Flux_style_decoder_params_are_converted_to_diffusers_names()
    {
        var config = VaeConfig.FromJson("""
            { "decoder": { "ch": 128, "out_ch": 3, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "z_channels": 16 },
              "scaling_factor": 0.3611, "shift_factor": 0.1159 }
            """);
        Assert.Equal([128, 256, 512, 512], config.BlockOutChannels);
        Assert.Equal(2, config.LayersPerBlock);
        Assert.Equal(16, config.LatentChannels);
    }

    [Fact]
    public void Tiny_preset_keeps_sixteen_latent_channels_and_the_eightfold_upscale()
    {
        VaeConfig.Tiny.Validate();
        Assert.Equal(16, VaeConfig.Tiny.LatentChannels);
        Assert.Equal(8, VaeConfig.Tiny.SpatialFactor);
        Assert.Equal(VaeConfig.FluxVae.ScalingFactor, VaeConfig.Tiny.ScalingFactor);
        Assert.Equal(VaeConfig.FluxVae.ShiftFactor, VaeConfig.Tiny.ShiftFactor);
    }

    [Fact]
    public void Config_with_channels_not_divisible_by_the_groups_is_refused_with_both_numbers()
    {
        var bad = VaeConfig.Tiny with { BlockOutChannels = [16, 20] };
        var ex = Assert.Throws<ArgumentException>(bad.Validate);
        Assert.Contains("20", ex.Message);
        Assert.Contains("norm_num_groups 8", ex.Message);
        Assert.Throws<ArgumentException>(() => new FluxVaeDecoder(bad));
    }

    [Fact]
    public void Config_asking_for_a_post_quant_conv_is_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => VaeConfig.FromJson("""{ "use_post_quant_conv": true }"""));
        Assert.Contains("use_post_quant_conv", ex.Message);
    }
}
