using System.Diagnostics;
using System.Globalization;
using System.Text;
using NewBie.Pipeline;
using NewBie.Pipeline.Configs;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Sampling;
using TorchSharp;
using static TorchSharp.torch;

// Times the NextDiT step and the denoising loop, prints a markdown table and writes it to BENCHMARKS.md.
// Usage: dotnet run -c Release --project bench/NewBie.Bench [-- --out PATH]
// (--vram-plan PLAN [--tiny] is the child process that measures one memory plan's peak VRAM, see VramBench.)
// The verbs parity, step, vram, random-model and server-job are the steps of bench/gpu/run (see bench/gpu/README.md).
namespace NewBie.Bench;

internal static class Program
{
    private const int CpuSize = 512;
    private const int CondTokens = 256;
    private const int Steps = 28;

    private static int Main(string[] args)
    {
        if (args is ["--vram-plan", var plan, .. var rest])
            return VramBench.RunPlan(plan, tiny: rest.Contains("--tiny"), new GpuCheck.Args(rest).Get("models-dir"));
        if (args is [var verb, ..] && GpuCheck.Verbs.Find(verb) is { } run) return run(new GpuCheck.Args(args[1..]));
        var outPath = args.Length == 2 && args[0] == "--out" ? args[1] : Path.Combine(RepositoryRoot(), "BENCHMARKS.md");
        var rows = new List<Row>();
        using (torch.no_grad())
        {
            rows.AddRange(TinyOnCpu());
            rows.Add(FullOnGpu());
        }
        var report = Report(rows, VramBench.Measure());
        Console.WriteLine(report);
        // The sections bench/NewBie.LoadBench writes (from its first marker on) are kept.
        var kept = File.Exists(outPath) ? File.ReadAllText(outPath) : "";
        var loadSections = kept.IndexOf("<!-- loadbench:", StringComparison.Ordinal);
        File.WriteAllText(outPath, loadSections < 0 ? report : report.TrimEnd() + "\n\n" + kept[loadSections..]);
        Console.WriteLine($"written to {outPath}");
        return 0;
    }

    private sealed record Row(string What, string Device, string DType, string Shape, string Time, string Throughput);

    private static IEnumerable<Row> TinyOnCpu()
    {
        var config = NextDiTConfig.Tiny;
        using var model = NextDiT.CreateRandom(config, 0, CPU, float32);
        var (cond, uncond) = Conditionings(config, CPU, CondTokens);
        var x = Noise.FromSeed(1, CpuSize, CpuSize, config.InChannels, CPU, float32);
        var cfg = new CfgSettings(5.0, 1.0, 1.0);
        var shape = $"{CpuSize}², L = {CondTokens} / 1";

        var step = Median(() => Guidance.GuidedVelocity(model, x, 0.3f, cond, uncond, cfg).Dispose(), warmup: 1, runs: 5);
        var stepFlops = CfgStepFlops(config, CondTokens, Tokens(config, CpuSize));
        yield return new Row("tiny NextDiT, one CFG step (cond + uncond forward)", "CPU", "fp32", shape, Ms(step), GFlops(stepFlops, step));

        var loop = Median(() => Samplers.Sample(SamplerKind.Euler, x, Steps, 6.0, Guidance.For(model, cond, uncond, cfg)).Dispose(), warmup: 0, runs: 1);
        yield return new Row($"tiny denoise loop, Euler {Steps} steps, CFG every step", "CPU", "fp32", shape, Ms(loop), GFlops(stepFlops * Steps, loop));
    }

    private static Row FullOnGpu()
    {
        const string what = "NewBie3B architecture (random weights), one CFG step";
        var config = NextDiTConfig.NewBie3B;
        var flops = CfgStepFlops(config, CondTokens, Tokens(config, 1024));
        var shape = $"1024², L = {CondTokens} / 1";
        var formula = $"{flops / 1e12:F1} TFLOP / t";
        if (!torch.cuda.is_available())
            return new Row(what, "CUDA", "bf16", shape, "not measured: no GPU", formula);

        var device = CUDA;
        using var model = NextDiT.CreateRandom(config, 0, device, bfloat16);
        var (cond, uncond) = Conditionings(config, device, CondTokens);
        var x = Noise.FromSeed(1, 1024, 1024, config.InChannels, device, bfloat16).to(float32);
        var cfg = new CfgSettings(5.0, 1.0, 1.0);
        var step = Median(() =>
        {
            Guidance.GuidedVelocity(model, x, 0.3f, cond, uncond, cfg).Dispose();
            torch.cuda.synchronize();
        }, warmup: 2, runs: 5);
        return new Row(what, "CUDA", "bf16", shape, Ms(step), $"{formula} = {flops / step.TotalSeconds / 1e12:F0} TFLOP/s");
    }

    internal static (Conditioning Cond, Conditioning Uncond) Conditionings(NextDiTConfig c, Device device, int condTokens)
    {
        using var g = new SeededRandom(7);
        Conditioning Make(int tokens) => new(
            g.Normal([1, tokens, c.CapFeatDim], device),
            torch.ones([1, tokens], dtype: int64, device: device),
            g.Normal([1, c.ClipTextDim], device));
        return (Make(condTokens), Make(1));
    }

    internal static long Tokens(NextDiTConfig c, int pixels) => (long)Math.Pow(pixels / 8 / c.PatchSize, 2);

    internal static double CfgStepFlops(NextDiTConfig c, long condTokens, long imageTokens) =>
        c.ForwardFlops(condTokens, imageTokens) + c.ForwardFlops(1, imageTokens);

    internal static TimeSpan Median(Action run, int warmup, int runs)
    {
        for (var i = 0; i < warmup; i++) run();
        var times = new List<TimeSpan>();
        for (var i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            run();
            times.Add(sw.Elapsed);
        }
        return times.Order().ElementAt(runs / 2);
    }

    private static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture) + " ms";

    private static string GFlops(double flops, TimeSpan t) => $"{flops / 1e9:F1} GFLOP / t = {flops / t.TotalSeconds / 1e9:F1} GFLOP/s";

    private static string Report(List<Row> rows, List<VramBench.Cell> vram)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Benchmarks");
        sb.AppendLine();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC on {Machine()}.");
        sb.AppendLine("Reproduce: `dotnet run -c Release --project bench/NewBie.Bench` (writes this file; build with `-p:NewBieBackend=cuda` for the GPU row).");
        sb.AppendLine("On a GPU machine without dotnet, the same rows and more come from `bench/gpu` (section \"GPU check\" below).");
        sb.AppendLine($"Step times are medians of 5 runs after warm-up, the loop is one run; the CPU rows use the built-in tiny NextDiT (random weights), L = caption tokens of cond / uncond, torch threads = {torch.get_num_threads()}.");
        sb.AppendLine("Effective throughput = the dense FLOPs of model-spec §10 (2·MACs of qkv, out and SwiGLU per token and block, plus 4·S²·dim attention per block, over the main blocks and both refiners; cond + uncond) divided by the measured time.");
        sb.AppendLine();
        sb.AppendLine("| what | device | dtype | size | time | effective throughput |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var r in rows) sb.AppendLine($"| {r.What} | {r.Device} | {r.DType} | {r.Shape} | {r.Time} | {r.Throughput} |");
        sb.AppendLine();
        sb.AppendLine("## Peak VRAM per plan");
        sb.AppendLine();
        sb.AppendLine("NewBie-image-Exp0.1 architecture with random weights (bf16), one image, 2 Euler steps, untiled VAE decode; peak = the NVIDIA driver's used memory");
        sb.AppendLine("during the job minus before the model existed, each plan in its own process (bench/NewBie.Bench/VramBench.cs). Measured by the same command");
        sb.AppendLine("as above on a CUDA machine (`dotnet run -c Release -p:NewBieBackend=cuda --project bench/NewBie.Bench`); compare with the estimates in README \"GPU memory\".");
        sb.AppendLine();
        sb.AppendLine("| plan | " + string.Join(" | ", VramBench.Sides.Select(s => $"{s}²")) + " |");
        sb.AppendLine("|---|" + string.Concat(VramBench.Sides.Select(_ => "---|")));
        foreach (var plan in vram.GroupBy(c => c.Plan))
            sb.AppendLine($"| `{plan.Key.Name()}` | " + string.Join(" | ", plan.Select(c => c.Peak)) + " |");
        return sb.ToString();
    }

    private static string Machine()
    {
        var cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        var mem = File.Exists("/proc/meminfo")
            ? File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal", StringComparison.Ordinal))
            : null;
        var gib = mem is null ? "?" : (long.Parse(mem.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0 / 1024).ToString("F0", CultureInfo.InvariantCulture);
        var gpu = torch.cuda.is_available() ? $", {torch.cuda.device_count()} CUDA device(s)" : ", no GPU";
        // The CPU rows are only comparable between runs at a similar load: the build machine is shared.
        var load = File.Exists("/proc/loadavg") ? $", load average {string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3))} at the end" : "";
        return $"{cpu ?? "unknown CPU"}, {Environment.ProcessorCount} cores, {gib} GiB RAM{gpu}{load}";
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NewBie.slnx"))) return dir.FullName;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "NewBie.slnx"))) return dir.FullName;
        throw new InvalidOperationException("NewBie.slnx not found: run from inside the repository or pass --out PATH");
    }
}
