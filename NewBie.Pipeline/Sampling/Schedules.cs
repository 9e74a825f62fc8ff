using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Sampling;

/// <summary>
/// Time grids of the flow-matching samplers (model-spec §5.1, §5.4). Computed with float32 tensor ops in the
/// same order as upstream, so the grids equal the reference ones bit for bit.
/// </summary>
public static class Schedules
{
    /// <summary>
    /// σ_k = shift·s_k / (1 + (shift − 1)·s_k), s = linspace(1, 0, steps + 1): σ_0 = 1 (noise) … σ_steps = 0.
    /// The model is evaluated at t = 1 − σ_k.
    /// </summary>
    public static float[] SigmaGrid(int steps, double shift)
    {
        Check(steps, shift);
        using var scope = torch.NewDisposeScope();
        var s = torch.linspace(1, 0, steps + 1, dtype: float32);
        var sigmas = s * shift / (s * (shift - 1) + 1);
        return sigmas.data<float>().ToArray();
    }

    /// <summary>
    /// The official ODE grid: u = linspace(0, 1, points), t = u / (u + shift − shift·u) (upstream
    /// transport Sampler.sample_ode with time_shifting_factor). t_0 = 0 (noise) … t_last = 1.
    /// </summary>
    public static float[] OfficialTimeGrid(int points, double shift)
    {
        Check(points - 1, shift);
        using var scope = torch.NewDisposeScope();
        var u = torch.linspace(0, 1, points, dtype: float32);
        var t = u / (u + shift - u * shift);
        return t.data<float>().ToArray();
    }

    private static void Check(int steps, double shift)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "a sampler needs at least one step");
        if (!(shift > 0)) throw new ArgumentOutOfRangeException(nameof(shift), shift, "the time shift must be positive");
    }
}
