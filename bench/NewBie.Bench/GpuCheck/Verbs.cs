using System.Text;
using System.Text.Json;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;
using NewBie.Pipeline.Tokenizers;
using NewBie.Pipeline.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace NewBie.Bench.GpuCheck;

/// <summary>
/// The steps of bench/gpu/run, one verb each; each appends its Markdown section to <c>--report FILE</c> and logs to
/// stdout. They run as separate processes so that one crash (a native wrapper that fails a call) cannot hide the others.
/// </summary>
internal static class Verbs
{
    public static Func<Args, int>? Find(string verb) => verb switch
    {
        "preflight" => Preflight,
        "parity" => Parity,
        "step" => StepBench.Run,
        "vram" => Vram,
        "random-model" => RandomModel,
        "server-job" => a => ServerJob.RunAsync(a).GetAwaiter().GetResult(),
        _ => null,
    };

    /// <summary>
    /// Loads libtorch through TorchSharp and runs a few calls on the default device against values known in closed
    /// form; exit code 0 only when all agree. bench/gpu/run rebuilds the native wrapper when this fails.
    /// </summary>
    private static int Preflight(Args a)
    {
        var (device, dtype) = NewBiePipeline.DefaultDevice();
        Console.WriteLine($"preflight: device {device}, dtype {dtype}, libtorch threads {torch.get_num_threads()}, CUDA devices {torch.cuda.device_count()}");
        using var scope = torch.NewDisposeScope();
        var x = torch.arange(12, dtype: float32, device: device).reshape(3, 4);
        var mm = x.matmul(x.T).cpu();                                      // row i·row j of 0..11
        Check("matmul", mm[1, 2].item<float>(), 4 * 8 + 5 * 9 + 6 * 10 + 7 * 11);
        var q = torch.ones(1, 2, 3, 4, device: device, dtype: dtype);
        var v = torch.arange(24, dtype: float32, device: device).reshape(1, 2, 3, 4).to(dtype);
        var attended = nn.functional.scaled_dot_product_attention(q, q, v).to(float32).cpu();   // equal scores: mean of v rows
        Check("sdpa", attended[0, 1, 0, 2].item<float>(), (14 + 18 + 22) / 3f);
        var bf = torch.full(3, 1.5, dtype: bfloat16, device: device).sum().to(float32).cpu();
        Check("bf16 sum", bf.item<float>(), 4.5f);
        Console.WriteLine("preflight: passed");
        return 0;
    }

    private static void Check(string what, float actual, float expected)
    {
        if (Math.Abs(actual - expected) > 1e-3 * Math.Max(1, Math.Abs(expected)))
            throw new InvalidOperationException($"preflight {what}: {actual}, expected {expected}");
        Console.WriteLine($"preflight: {what} ok");
    }

    private static int Parity(Args a)
    {
        var title = $"Parity tests on {Pipeline.Tests.Parity.Device.type} in {Pipeline.Tests.Parity.DType}" +
            (!Pipeline.Tests.Parity.FullPrecision
                ? $" (bound ‖actual − expected‖/‖expected‖ ≤ {Pipeline.Tests.Parity.ReducedPrecisionRelativeError:E0} per tensor)"
                : " (each fixture README's float32 tolerance)");
        if (Pipeline.Tests.Parity.Device.type == DeviceType.CUDA)
        {
            // The fixture tolerances assume true float32 arithmetic (nextdit README): no TF32 in matmuls or convolutions.
            torch.backends.cuda.matmul.allow_tf32 = false;
            torch.backends.cudnn.allow_tf32 = false;
        }
        var filter = a.Get("filter");
        var outcomes = ParityRunner.Run(Console.Out, filter);
        var markdown = ParityRunner.Markdown(title + (filter is null ? "" : $", tests named *{filter}*"), outcomes);
        Console.Write(markdown);
        if (a.Get("report") is { } report) File.AppendAllText(report, markdown + "\n");
        return outcomes.Count > 0 && outcomes.All(o => o.Result != "failed") ? 0 : 1;
    }

    private static int Vram(Args a)
    {
        var tiny = a.Flag("tiny");
        var cells = VramBench.Measure(tiny, a.Get("models-dir"));
        var sides = VramBench.SidesFor(tiny);
        var sb = new StringBuilder();
        sb.AppendLine($"| plan | {string.Join(" | ", sides.Select(s => $"{s}²"))} |");
        sb.AppendLine("|---|" + string.Concat(sides.Select(_ => "---|")));
        foreach (var plan in cells.GroupBy(c => c.Plan))
            sb.AppendLine($"| `{plan.Key.Name()}` | " + string.Join(" | ", plan.Select(c => c.Peak)) + " |");
        Console.Write(sb);
        if (a.Get("report") is { } report) File.AppendAllText(report, sb + "\n");
        return 0;
    }

    /// <summary>
    /// A model folder in the released Hugging Face layout with random weights, each component's config.json and
    /// generated tokenizer files (as the built-in tiny model has), for a real server process to load with
    /// <c>--model newbie-exp0.1</c>. With
    /// <c>--transformer FILE</c> the DiT weights are that file (upstream_step.py's), linked rather than regenerated.
    /// </summary>
    private static int RandomModel(Args a)
    {
        var folder = a.Get("dir") ?? throw new ArgumentException("random-model needs --dir DIR");
        var config = a.Get("config", "full") == "full" ? PipelineConfig.NewBieExp01 : PipelineConfig.Tiny;
        var (device, dtype) = NewBiePipeline.DefaultDevice();
        var layout = new ModelFolder(folder);
        foreach (var dir in new[] { layout.Transformer, layout.TextEncoder, layout.ClipModel, layout.Vae }) Directory.CreateDirectory(dir);
        TinyTokenizers.Write(layout.TextEncoder, layout.ClipModel);
        // Each component's settings beside its weights, as the released folder has them: loading reads these (the
        // presets are only a fallback), so the tiny folder of the dry run is served by the same path as the full one.
        void Config<T>(string dir, T config) => File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
        Config(layout.Transformer, config.NextDiT);
        Config(layout.TextEncoder, config.Gemma);
        Config(layout.ClipModel, config.Jina);
        Config(layout.Vae, config.Vae);
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["newbie"] = "random" };
        // Timed apart: random initialisation draws on the CPU (SeededRandom), writing is host copies and disk.
        void Save(string path, Func<nn.Module> create)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using var module = create();
            var created = clock.Elapsed;
            SafetensorsWriter.Write(path, module.state_dict(), metadata);
            Console.WriteLine($"random-model: {path}: {new FileInfo(path).Length / (double)(1L << 30):F2} GiB, initialised in {created.TotalSeconds:F1} s, written in {(clock.Elapsed - created).TotalSeconds:F1} s");
        }
        using var _ = torch.no_grad();
        Save(layout.GemmaWeights, () => GemmaTextEncoder.CreateRandom(config.Gemma, 1, device, dtype));
        Save(layout.JinaWeights, () => JinaTextEncoder.CreateRandom(config.Jina, 2, device, dtype));
        Save(layout.VaeWeights, () => FluxVaeDecoder.CreateRandom(config.Vae, 4, device, dtype));
        if (a.Get("transformer") is { } transformer)
        {
            File.CreateSymbolicLink(layout.TransformerWeights, Path.GetFullPath(transformer));
            Console.WriteLine($"random-model: {layout.TransformerWeights} -> {transformer}");
        }
        else
        {
            Save(layout.TransformerWeights, () => NextDiT.CreateRandom(config.NextDiT, 3, device, dtype));
        }
        return 0;
    }
}
