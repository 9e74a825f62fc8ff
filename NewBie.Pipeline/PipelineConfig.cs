using NewBie.Pipeline.Configs;

namespace NewBie.Pipeline;

/// <summary>The four network configurations of one model, plus how it is reported.</summary>
public sealed record PipelineConfig(string Id, bool IsTiny, GemmaConfig Gemma, JinaConfig Jina, NextDiTConfig NextDiT, VaeConfig Vae)
{
    /// <summary>The released NewBie-image-Exp0.1 (model-spec §2, §3, §4).</summary>
    public static PipelineConfig NewBieExp01 { get; } =
        new("newbie-exp0.1", false, GemmaConfig.Gemma3_4B, JinaConfig.JinaClipV2, NextDiTConfig.NewBie3B, VaeConfig.FluxVae);

    /// <summary>
    /// The built-in tiny model: the same architecture at toy sizes with random weights. Its DiT reads the tiny
    /// encoders' widths, so the presets cannot drift apart.
    /// </summary>
    public static PipelineConfig Tiny { get; } = new("newbie-tiny", true, GemmaConfig.Tiny, JinaConfig.Tiny,
        NextDiTConfig.Tiny with { CapFeatDim = GemmaConfig.Tiny.HiddenSize, ClipTextDim = JinaConfig.Tiny.HiddenSize }, VaeConfig.Tiny);

    public void Validate()
    {
        if (NextDiT.CapFeatDim != Gemma.HiddenSize)
            throw new ArgumentException($"NextDiT cap_feat_dim {NextDiT.CapFeatDim} must equal the Gemma hidden size {Gemma.HiddenSize}");
        if (NextDiT.ClipTextDim != Jina.HiddenSize)
            throw new ArgumentException($"NextDiT clip_text_dim {NextDiT.ClipTextDim} must equal the Jina hidden size {Jina.HiddenSize}");
        if (NextDiT.InChannels != Vae.LatentChannels)
            throw new ArgumentException($"NextDiT in_channels {NextDiT.InChannels} must equal the VAE latent channels {Vae.LatentChannels}");
    }
}
