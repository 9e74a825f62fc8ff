using System.Globalization;
using System.Text.Json;
using NewBie.Pipeline;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Sampling;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Bench.GpuCheck;

/// <summary>
/// One CFG step (cond + uncond forward, guidance, renorm clamp) of NewBie's NextDiT, timed as the BENCHMARKS.md step
/// row is (median of 5 after 2 warm-ups, device synchronised). With <c>--weights/--inputs</c> (written by
/// bench/gpu/upstream_step.py) it loads the upstream model's weights through the real checkpoint loader and runs the
/// same inputs; with <c>--reference</c> it compares its velocity and time with upstream's.
/// </summary>
internal static class StepBench
{
    public static int Run(Args a)
    {
        var full = a.Get("config", "full") == "full";
        var config = full ? NextDiTConfig.NewBie3B : NextDiTConfig.Tiny;
        var size = a.Int("size", full ? 1024 : 64);
        var condTokens = a.Int("cond-tokens", 256);
        var (device, dtype) = NewBiePipeline.DefaultDevice();
        var cfg = new CfgSettings(5.0, 1.0, 1.0);
        using var _ = torch.no_grad();

        var weights = a.Get("weights");
        using var model = weights is null ? NextDiT.CreateRandom(config, 0, device, dtype) : NextDiT.Load(weights, config, device, dtype);
        var (x, t, cond, uncond) = a.Get("inputs") is { } inputs ? Read(inputs, device) : Generated(config, size, condTokens, device, dtype);

        Tensor? velocity = null;
        var step = Program.Median(() =>
        {
            velocity?.Dispose();
            velocity = Guidance.GuidedVelocity(model, x, t, cond, uncond, cfg);
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
        }, warmup: 2, runs: 5);
        var flops = Program.CfgStepFlops(config, condTokens, Program.Tokens(config, size));
        var ms = step.TotalMilliseconds;
        Console.WriteLine($"step: {ms:F1} ms, {Flop(flops)}, {Flop(flops / step.TotalSeconds)}/s on {device.type} {dtype}");
        if (a.Get("output") is { } output) SafetensorsWriter.Write(output, new Dictionary<string, Tensor> { ["velocity"] = velocity!.to(float32).cpu() });

        var what = full ? "NewBie3B architecture (random weights)" : "tiny NextDiT (dry run)";
        var shape = $"{size}², L = {condTokens} / 1";
        var lines = new List<string>
        {
            "| implementation | device | dtype | size | one CFG step | dense FLOP | effective |",
            "|---|---|---|---|---|---|---|",
            $"| NewBie (TorchSharp), {what} | {device.type} | {dtype} | {shape} | {ms:F1} ms | {Flop(flops)} | {Flop(flops / step.TotalSeconds)}/s |",
        };
        if (a.Get("reference") is { } reference && a.Get("reference-json") is { } referenceJson)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(referenceJson));
            var upMs = doc.RootElement.GetProperty("ms").GetDouble();
            var upTorch = doc.RootElement.GetProperty("torch").GetString();
            var upVelocity = ReadOne(reference, "velocity");
            var cs = velocity!.to(float32).cpu();
            var relative = ((cs - upVelocity).norm() / upVelocity.norm()).item<float>();
            lines.Add($"| upstream NextDiT_CLIP.forward_with_cfg (PyTorch {upTorch}), same weights and inputs | {device.type} | {dtype} | {shape} | {upMs:F1} ms | {Flop(flops)} | {Flop(flops / (upMs / 1000))}/s |");
            lines.Add("");
            lines.Add($"NewBie / upstream time: **{ms / upMs:F2}×** (below 1 = NewBie faster). Velocity difference ‖NewBie − upstream‖ / ‖upstream‖ = {relative:E2} " +
                $"(both {dtype}; the bf16 parity bound is {NewBie.Pipeline.Tests.Parity.ReducedPrecisionRelativeError:E0}).");
        }
        if (a.Get("report") is { } report) File.AppendAllText(report, string.Join("\n", lines) + "\n\n");
        File.WriteAllText(a.Get("json") ?? "/dev/null", JsonSerializer.Serialize(new { ms, flops, device = device.type.ToString(), dtype = dtype.ToString() }));
        return 0;
    }

    /// <summary>TFLOP for the full model, GFLOP for the tiny one.</summary>
    private static string Flop(double f) => f >= 1e12 ? $"{f / 1e12:F1} TFLOP" : $"{f / 1e9:F2} GFLOP";

    private static (Tensor X, float T, Conditioning Cond, Conditioning Uncond) Read(string path, Device device)
    {
        using var file = SafetensorsFile.Open(path);
        Tensor T(string name) => file.Read(name).to(device);
        Conditioning C(string p) => new(T(p + ".cap_feats"), T(p + ".cap_mask"), T(p + ".clip_text_pooled"));
        return (T("x"), file.Read("t")[0].item<float>(), C("cond."), C("uncond."));
    }

    private static (Tensor X, float T, Conditioning Cond, Conditioning Uncond) Generated(NextDiTConfig config, int size, int condTokens, Device device, ScalarType dtype)
    {
        var (cond, uncond) = Program.Conditionings(config, device, condTokens);
        var x = Noise.FromSeed(1, size, size, config.InChannels, device, dtype).to(float32);
        return (x, 0.3f, cond, uncond);
    }

    /// <summary>One tensor of a safetensors file, on the CPU as float32.</summary>
    private static Tensor ReadOne(string path, string name)
    {
        using var file = SafetensorsFile.Open(path);
        return file.Read(name).to(float32);
    }
}

/// <summary>Minimal <c>--name value</c> argument reading for the bench verbs.</summary>
internal sealed class Args(string[] args)
{
    public string? Get(string name)
    {
        var i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public bool Flag(string name) => args.Contains("--" + name);
}
