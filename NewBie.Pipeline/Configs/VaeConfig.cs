using System.Text.Json;
using System.Text.Json.Serialization;

namespace NewBie.Pipeline.Configs;

/// <summary>
/// The decoder half of a diffusers <c>AutoencoderKL</c> config (<c>vae/config.json</c>); names are diffusers'.
/// Keys this port does not use (<c>down_block_types</c>, <c>sample_size</c>, …) are ignored when reading.
/// </summary>
public sealed record VaeConfig
{
    [JsonPropertyName("out_channels")] public int OutChannels { get; init; } = 3;
    [JsonPropertyName("latent_channels")] public int LatentChannels { get; init; } = 16;
    /// <summary>Widths from the highest resolution to the lowest; the decoder walks them in reverse.</summary>
    [JsonPropertyName("block_out_channels")] public IReadOnlyList<int> BlockOutChannels { get; init; } = [128, 256, 512, 512];
    /// <summary>The decoder has one more resnet per up block than this.</summary>
    [JsonPropertyName("layers_per_block")] public int LayersPerBlock { get; init; } = 2;
    [JsonPropertyName("norm_num_groups")] public int NormNumGroups { get; init; } = 32;
    [JsonPropertyName("act_fn")] public string ActFn { get; init; } = "silu";
    [JsonPropertyName("mid_block_add_attention")] public bool MidBlockAddAttention { get; init; } = true;
    [JsonPropertyName("use_post_quant_conv")] public bool UsePostQuantConv { get; init; }
    [JsonPropertyName("scaling_factor")] public double ScalingFactor { get; init; } = 0.3611;
    [JsonPropertyName("shift_factor")] public double ShiftFactor { get; init; } = 0.1159;

    /// <summary>diffusers hard-codes this for every GroupNorm of the VAE; it is not in config.json.</summary>
    [JsonIgnore] public double NormEps { get; init; } = 1e-6;

    /// <summary>Pixels per latent cell along each axis: every up block but the last doubles the size.</summary>
    [JsonIgnore] public int SpatialFactor => 1 << (BlockOutChannels.Count - 1);

    /// <summary>The FLUX.1 VAE that NewBie-image-Exp0.1 ships in <c>vae/</c> (model-spec §4).</summary>
    public static VaeConfig FluxVae { get; } = new();

    /// <summary>
    /// The built-in tiny model's decoder: random weights, same code path and the same ×8 spatial factor and
    /// 16 latent channels as the real one, so images still come out at the requested size.
    /// </summary>
    public static VaeConfig Tiny { get; } = new()
    {
        BlockOutChannels = [16, 16, 32, 32],
        LayersPerBlock = 1,
        NormNumGroups = 8,
    };

    public void Validate()
    {
        if (BlockOutChannels.Count == 0) throw new ArgumentException("block_out_channels is empty");
        foreach (var c in BlockOutChannels)
        {
            if (c <= 0 || NormNumGroups <= 0 || c % NormNumGroups != 0)
                throw new ArgumentException($"block_out_channels entry {c} is not a positive multiple of norm_num_groups {NormNumGroups}");
        }
        if (LayersPerBlock < 1) throw new ArgumentException($"layers_per_block must be at least 1, got {LayersPerBlock}");
        if (LatentChannels < 1 || OutChannels < 1)
            throw new ArgumentException($"latent_channels {LatentChannels} and out_channels {OutChannels} must be positive");
        if (ActFn != "silu") throw new ArgumentException($"act_fn '{ActFn}' is not supported (only silu)");
        if (UsePostQuantConv) throw new ArgumentException("use_post_quant_conv is not supported (the FLUX VAE has none)");
        if (!(ScalingFactor > 0)) throw new ArgumentException($"scaling_factor must be positive, got {ScalingFactor}");
    }

    /// <summary>
    /// Reads a diffusers <c>config.json</c>, or a flux-style one whose <c>decoder</c> object holds
    /// <c>ch, ch_mult, num_res_blocks, z_channels, out_ch</c> (as the parity fixture's does).
    /// </summary>
    public static VaeConfig FromJson(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var config = doc.RootElement.TryGetProperty("decoder", out var flux)
            ? FromFluxParams(doc.RootElement, flux)
            : JsonSerializer.Deserialize<VaeConfig>(json) ?? throw new InvalidDataException("VAE config is null");
        config.Validate();
        return config;
    }

    /// <summary>Reads <paramref name="path"/>, or <c>config.json</c> inside it when it is a folder.</summary>
    public static VaeConfig FromFile(string path) =>
        FromJson(File.ReadAllText(Directory.Exists(path) ? Path.Combine(path, "config.json") : path));

    private static VaeConfig FromFluxParams(JsonElement root, JsonElement decoder)
    {
        int ch = decoder.GetProperty("ch").GetInt32();
        var defaults = new VaeConfig();
        return new VaeConfig
        {
            // flux ch_mult [1, 2, 4, 4] × ch 128 is exactly diffusers' block_out_channels.
            BlockOutChannels = decoder.GetProperty("ch_mult").EnumerateArray().Select(m => ch * m.GetInt32()).ToArray(),
            LayersPerBlock = decoder.GetProperty("num_res_blocks").GetInt32(),
            LatentChannels = decoder.GetProperty("z_channels").GetInt32(),
            OutChannels = decoder.TryGetProperty("out_ch", out var o) ? o.GetInt32() : defaults.OutChannels,
            ScalingFactor = root.TryGetProperty("scaling_factor", out var s) ? s.GetDouble() : defaults.ScalingFactor,
            ShiftFactor = root.TryGetProperty("shift_factor", out var f) ? f.GetDouble() : defaults.ShiftFactor,
        };
    }
}
