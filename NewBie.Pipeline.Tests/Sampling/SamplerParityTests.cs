using System.Text.Json;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Tests.NextDiT;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Pipeline.Tests.Sampling;

/// <summary>
/// Full denoising loops with the tiny upstream model (fixtures/sampler): grids to 1e-7 absolute; traces,
/// trajectories and final latents to 5e-4 + 5e-4·|expected|, as its README states.
/// </summary>
[Trait("Category", "Parity")]
public sealed class SamplerParityTests
{
    private const double Tol = 5e-4;
    private const double GridTol = 1e-7;

    public static TheoryData<string> Folders => Fixtures.Folders("sampler");

    private sealed record Run(Dictionary<string, Tensor> Inputs, Dictionary<string, Tensor> Expected, JsonElement Config, Velocity Velocity,
        List<float> Times, List<Tensor> States, List<Tensor> Velocities);

    /// <summary>Loads the fixture and wraps the guided velocity so every evaluation's t, x and v are recorded.</summary>
    private static (Pipeline.NextDiT Model, Run Run) Prepare(string folder, string section)
    {
        var inputs = TensorAssert.ReadAll(Path.Combine(folder, "inputs.safetensors")).ToDictionary(kv => kv.Key, kv => Parity.Input(kv.Value));
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var config = Config(folder);
        var model = Pipeline.NextDiT.Load(Path.Combine(folder, "weights.safetensors"), NextDiTConfig.Load(Path.Combine(folder, "config.json")), Parity.Device, Parity.DType);
        var s = config.GetProperty(section);
        var cfg = new CfgSettings(s.GetProperty("cfg_scale").GetDouble(), s.GetProperty("cfg_trunc").GetDouble(), s.GetProperty("renorm_cfg").GetDouble());
        var (cond, uncond) = NextDiTParityTests.CondUncond(inputs, prefix: "");
        var guided = Guidance.For(model, cond, uncond, cfg);
        List<float> times = [];
        List<Tensor> states = [], velocities = [];
        Velocity recording = (x, t) =>
        {
            var v = guided(x, t);
            times.Add(t);
            states.Add(x.clone().DetachFromDisposeScope());
            velocities.Add(v.clone().DetachFromDisposeScope());
            return v;
        };
        return (model, new Run(inputs, expected, config, recording, times, states, velocities));
    }

    private static JsonElement Config(string folder) => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json"))).RootElement;

    [FixtureTheory("sampler"), MemberData(nameof(Folders))]
    public void Euler_sigma_grid_matches_the_fixture(string folder)
    {
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var euler = Config(folder).GetProperty("euler");
        var sigmas = Schedules.SigmaGrid(euler.GetProperty("steps").GetInt32(), euler.GetProperty("shift").GetDouble());
        TensorAssert.Close(expected["euler.sigmas"], torch.tensor(sigmas), GridTol, 0, "euler.sigmas");
        TensorAssert.Close(expected["euler.t"], torch.tensor(sigmas[..^1].Select(s => 1f - s).ToArray()), GridTol, 0, "euler.t");
    }

    [FixtureTheory("sampler"), MemberData(nameof(Folders))]
    public void Official_time_grid_matches_the_fixture(string folder)
    {
        var expected = TensorAssert.ReadAll(Path.Combine(folder, "expected.safetensors"));
        var ode = Config(folder).GetProperty("official_ode");
        var grid = Schedules.OfficialTimeGrid(ode.GetProperty("num_steps").GetInt32(), ode.GetProperty("time_shifting_factor").GetDouble());
        TensorAssert.Close(expected["official.t_grid"], torch.tensor(grid), GridTol, 0, "official.t_grid");
    }

    [FixtureTheory("sampler"), MemberData(nameof(Folders))]
    public void Euler_loop_matches_trace_trajectory_and_final_latent(string folder)
    {
        var (model, run) = Prepare(folder, "euler");
        using var _ = model;
        var steps = run.Config.GetProperty("euler").GetProperty("steps").GetInt32();
        var shift = run.Config.GetProperty("euler").GetProperty("shift").GetDouble();
        var noise = run.Inputs["noise"];
        List<Tensor> trajectory = [noise];
        var result = Samplers.Euler(noise, Schedules.SigmaGrid(steps, shift), run.Velocity,
            new DenoiseReporting(OnStep: (_, x) => trajectory.Add(x.clone().DetachFromDisposeScope())));

        TensorAssert.Close(run.Expected["euler.t"], torch.tensor(run.Times.ToArray()), GridTol, 0, "euler.t (evaluated)");
        for (var k = 0; k < steps; k++)
            Parity.Close(run.Expected["euler.trace.v"][k], run.Velocities[k][0], Tol, Tol, $"euler.trace.v[{k}]");
        Parity.Close(run.Expected["euler.trajectory"], torch.cat(trajectory, 0), Tol, Tol, "euler.trajectory");
        Parity.Close(run.Expected["euler.final_latent"], result, Tol, Tol, "euler.final_latent");
    }

    [FixtureTheory("sampler"), MemberData(nameof(Folders))]
    public void Official_midpoint_loop_matches_trace_trajectory_and_final_latent(string folder)
    {
        var (model, run) = Prepare(folder, "official_ode");
        using var _ = model;
        var ode = run.Config.GetProperty("official_ode");
        Assert.Equal("midpoint", ode.GetProperty("sampling_method").GetString());
        var points = ode.GetProperty("num_steps").GetInt32();
        var shift = ode.GetProperty("time_shifting_factor").GetDouble();
        var noise = run.Inputs["noise"];
        List<Tensor> trajectory = [noise];
        var result = Samplers.Midpoint(noise, Schedules.OfficialTimeGrid(points, shift), run.Velocity,
            new DenoiseReporting(OnStep: (_, x) => trajectory.Add(x.clone().DetachFromDisposeScope())));

        Assert.Equal(ode.GetProperty("model_evaluations").GetInt32(), run.Times.Count);
        TensorAssert.Close(run.Expected["official.trace.t"], torch.tensor(run.Times.ToArray()), GridTol, 0, "official.trace.t");
        for (var k = 0; k < run.Times.Count; k++)
        {
            Parity.Close(run.Expected["official.trace.x"][k], run.States[k][0], Tol, Tol, $"official.trace.x[{k}]");
            Parity.Close(run.Expected["official.trace.v"][k], run.Velocities[k][0], Tol, Tol, $"official.trace.v[{k}]");
        }
        Parity.Close(run.Expected["official.trajectory"], torch.cat(trajectory, 0), Tol, Tol, "official.trajectory");
        Parity.Close(run.Expected["official.final_latent"], result, Tol, Tol, "official.final_latent");
    }

    /// <summary><c>steps</c> means Euler steps for euler and grid intervals (points − 1) for midpoint.</summary>
    [FixtureTheory("sampler"), MemberData(nameof(Folders))]
    public void Sample_with_steps_runs_the_same_loops(string folder)
    {
        var (eulerModel, euler) = Prepare(folder, "euler");
        using (eulerModel)
        {
            var section = euler.Config.GetProperty("euler");
            var steps = section.GetProperty("steps").GetInt32();
            var result = Samplers.Sample(SamplerKind.Euler, euler.Inputs["noise"], steps, section.GetProperty("shift").GetDouble(), euler.Velocity);
            Parity.Close(euler.Expected["euler.final_latent"], result, Tol, Tol, $"Sample(Euler, {steps} steps)");
        }
        var (midpointModel, midpoint) = Prepare(folder, "official_ode");
        using (midpointModel)
        {
            var ode = midpoint.Config.GetProperty("official_ode");
            var intervals = ode.GetProperty("num_steps").GetInt32() - 1;
            var result = Samplers.Sample(SamplerKind.Midpoint, midpoint.Inputs["noise"], intervals, ode.GetProperty("time_shifting_factor").GetDouble(), midpoint.Velocity);
            Parity.Close(midpoint.Expected["official.final_latent"], result, Tol, Tol, $"Sample(Midpoint, {intervals} intervals)");
        }
    }
}
