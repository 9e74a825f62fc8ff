using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Sampling;

/// <summary>The guided velocity v(x, t) = x_data − x_noise at time t (0 = noise, 1 = clean), float32 in and out.</summary>
public delegate Tensor Velocity(Tensor x, float t);

/// <summary>
/// Where a denoising loop reports to: progress after every step, and the float32 state after every step (previews,
/// tests). The state handed to OnStep is the loop's live tensor, valid during the call only: clone it to keep it.
/// </summary>
public sealed record DenoiseReporting(IProgress<StepProgress>? Progress = null, int Image = 0, int Images = 1, Action<int, Tensor>? OnStep = null);

/// <summary>
/// The flow-matching ODE loops. The state is kept in float32 (upstream integrates x.float()); the velocity
/// delegate casts to the model dtype. Cancellation is checked before every step, never inside one, so a
/// cancelled run throws <see cref="OperationCanceledException"/> at a step boundary.
/// </summary>
public static class Samplers
{
    /// <summary>
    /// Runs <paramref name="steps"/> steps of the chosen sampler on the shift grid. Euler: steps model evaluations on
    /// the σ grid (model-spec §5.4). Midpoint: the official demo's solver, steps intervals (steps + 1 grid points,
    /// 2·steps evaluations).
    /// </summary>
    public static Tensor Sample(SamplerKind kind, Tensor noise, int steps, double shift, Velocity velocity,
        DenoiseReporting? reporting = null, CancellationToken cancellationToken = default) => kind switch
    {
        SamplerKind.Euler => Euler(noise, Schedules.SigmaGrid(steps, shift), velocity, reporting, cancellationToken),
        SamplerKind.Midpoint => Midpoint(noise, Schedules.OfficialTimeGrid(steps + 1, shift), velocity, reporting, cancellationToken),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>x ← x + (σ_k − σ_k+1)·v(x, 1 − σ_k) for every interval of the σ grid (σ from 1 down to 0).</summary>
    public static Tensor Euler(Tensor noise, IReadOnlyList<float> sigmas, Velocity velocity,
        DenoiseReporting? reporting = null, CancellationToken cancellationToken = default)
    {
        if (sigmas.Count < 2) throw new ArgumentException("the σ grid needs at least two points", nameof(sigmas));
        var steps = sigmas.Count - 1;
        var x = noise.to(float32).clone();
        for (var k = 0; k < steps; k++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using (var scope = torch.NewDisposeScope())
            {
                var v = velocity(x, 1f - sigmas[k]);
                var next = x + v.to(float32) * (sigmas[k] - sigmas[k + 1]);
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }
            Report(reporting, k, steps, x);
        }
        return x;
    }

    /// <summary>
    /// Fixed-grid midpoint over a t grid from 0 to 1 (torchdiffeq's Midpoint as used by the official demo):
    /// k1 = v(t_i, x), x_mid = x + Δ/2·k1, x ← x + Δ·v(t_i + Δ/2, x_mid), with the times in float32.
    /// </summary>
    public static Tensor Midpoint(Tensor noise, IReadOnlyList<float> times, Velocity velocity,
        DenoiseReporting? reporting = null, CancellationToken cancellationToken = default)
    {
        if (times.Count < 2) throw new ArgumentException("the t grid needs at least two points", nameof(times));
        var steps = times.Count - 1;
        var x = noise.to(float32).clone();
        for (var i = 0; i < steps; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using (var scope = torch.NewDisposeScope())
            {
                float t0 = times[i], dt = times[i + 1] - t0, half = 0.5f * dt;
                var k1 = velocity(x, t0).to(float32);
                var mid = x + k1 * half;
                var k2 = velocity(mid, t0 + half).to(float32);
                var next = x + k2 * dt;
                x.Dispose();
                x = next.MoveToOuterDisposeScope();
            }
            Report(reporting, i, steps, x);
        }
        return x;
    }

    private static void Report(DenoiseReporting? reporting, int step, int steps, Tensor x)
    {
        if (reporting is null) return;
        reporting.OnStep?.Invoke(step, x);
        reporting.Progress?.Report(new StepProgress(GenerationStage.Denoising, step + 1, steps, reporting.Image, reporting.Images));
    }
}
