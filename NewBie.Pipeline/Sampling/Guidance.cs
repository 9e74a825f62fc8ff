using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Sampling;

/// <summary>
/// The text conditioning of one prompt for the DiT: Gemma features [1, L, cap_feat_dim], their mask [1, L]
/// (right padding allowed) and the pooled Jina vector [1, clip_text_dim]. The caption length is read from the mask
/// once, here, so that the step loop never waits on the device for it.
/// </summary>
public sealed record Conditioning(Tensor CapFeats, Tensor CapMask, Tensor Pooled)
{
    public long CapLength { get; } = NextDiT.CaptionLengths(CapMask).Single();
}

/// <summary>
/// Classifier-free guidance settings (model-spec §5.2): CFG runs only while t &lt; Trunc (t = 0 is noise), and when
/// Renorm &gt; 0 the guided velocity's norm is clamped to Renorm·‖v_cond‖.
/// </summary>
public sealed record CfgSettings(double Scale, double Trunc, double Renorm)
{
    public static CfgSettings From(GenerationRequest request) => new(request.Guidance, request.CfgTrunc, request.RenormCfg);
}

/// <summary>Upstream NextDiT_CLIP.forward_with_cfg, with cond and uncond run as two calls of uniform caption length.</summary>
public static class Guidance
{
    /// <summary>
    /// Guided velocity for x [B, C, h, w] (float32) at t. With t ≥ Trunc only the cond branch runs and v = v_cond.
    /// Otherwise v = v_u + s·(v_c − v_u), and with renorm, where ‖v‖ ≥ r·‖v_c‖ (norms over C, h, w of each image)
    /// v ← v·(r·‖v_c‖ / ‖v‖): a clamp, not an always-rescale. Returns float32.
    /// </summary>
    public static Tensor GuidedVelocity(NextDiT model, Tensor x, float t, Conditioning cond, Conditioning uncond, CfgSettings cfg)
    {
        using var scope = torch.NewDisposeScope();
        var vCond = Run(model, x, t, cond);
        // Upstream compares the float32 time with the threshold in float32 (tensor < Python float).
        if (!(t < (float)cfg.Trunc)) return vCond.MoveToOuterDisposeScope();
        var vUncond = Run(model, x, t, uncond);
        var v = vUncond + (vCond - vUncond) * cfg.Scale;
        if (cfg.Renorm > 0)
        {
            long[] dims = [.. Enumerable.Range(1, (int)v.dim() - 1).Select(d => (long)d)];
            var maxNorm = torch.linalg.vector_norm(vCond, dims: dims, keepdim: true) * cfg.Renorm;
            var norm = torch.linalg.vector_norm(v, dims: dims, keepdim: true);
            // where(‖v‖ ≥ max, v·max/‖v‖, v) as one scale factor min(max/‖v‖, 1): the same values, fewer kernels.
            v = v * (maxNorm / norm).clamp_max(1.0);
        }
        return v.MoveToOuterDisposeScope();
    }

    /// <summary>The guided velocity as a sampler delegate.</summary>
    public static Velocity For(NextDiT model, Conditioning cond, Conditioning uncond, CfgSettings cfg) =>
        (x, t) => GuidedVelocity(model, x, t, cond, uncond, cfg);

    /// <summary>One un-guided forward of the batch with one prompt's conditioning, as float32.</summary>
    public static Tensor Run(NextDiT model, Tensor x, float t, Conditioning c)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var batch = x.shape[0];
        var ts = torch.full([batch], t, dtype: float32, device: model.Device);
        var v = model.forward(
            x.to(model.DType, model.Device),
            ts,
            c.CapFeats.expand(batch, -1, -1),
            Enumerable.Repeat(c.CapLength, (int)batch).ToArray(),
            c.Pooled.expand(batch, -1));
        return v.to(float32).MoveToOuterDisposeScope();
    }
}
