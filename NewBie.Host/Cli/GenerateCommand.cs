using System.Globalization;
using NewBie.Host.Models;
using NewBie.Host.Storage;
using NewBie.Pipeline;
using NewBie.Pipeline.Imaging;
using NewBie.Pipeline.Sampling;
using Spectre.Console;

namespace NewBie.Host.Cli;

/// <summary>
/// <c>NewBie generate --prompt TEXT --out FILE.png [--model auto|tiny|newbie-exp0.1] [--models-dir DIR] [--data-dir DIR]
/// [--width W --height H --steps N --seed S --guidance G --sampler euler|midpoint --negative TEXT --count N]
/// [--preset default|demo --cfg-trunc T --renorm R --shift S]</c>:
/// one generation from the console, no server, with a progress bar. It does not take the data folder's lock (a
/// server may be running); it only reads the tiny model written there, or writes it if absent.
/// </summary>
public static class GenerateCommand
{
    public const string Usage =
        "Usage: NewBie generate --prompt TEXT --out FILE.png [--negative TEXT] [--model auto|tiny|newbie-exp0.1] [--models-dir DIR] [--data-dir DIR]\n" +
        "                       [--width W] [--height H] [--steps N] [--seed S] [--guidance G] [--sampler euler|midpoint] [--count N] [--system-prompt auto|none|TEXT]\n" +
        "                       [--preset default|demo] [--cfg-trunc T] [--renorm R] [--shift S]";

    public static int Run(string[] args)
    {
        Dictionary<string, string> options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        if (!options.TryGetValue("prompt", out var prompt) || !options.TryGetValue("out", out var output))
        {
            Console.Error.WriteLine("generate needs --prompt and --out.");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        GenerationRequest request;
        try
        {
            var preset = SamplerPresets.Find(options.GetValueOrDefault("preset", "default"))
                ?? throw new FormatException($"--preset must be one of {SamplerPresets.Names}, got '{options["preset"]}'");
            var defaults = preset.Apply(new GenerationRequest { Prompt = prompt });
            request = defaults with
            {
                NegativePrompt = options.GetValueOrDefault("negative", ""),
                Width = Int(options, "width", defaults.Width),
                Height = Int(options, "height", defaults.Height),
                Steps = Int(options, "steps", defaults.Steps),
                Count = Int(options, "count", defaults.Count),
                Guidance = Double(options, "guidance", defaults.Guidance),
                Seed = options.TryGetValue("seed", out var seed) ? long.Parse(seed, CultureInfo.InvariantCulture) : Random.Shared.NextInt64(1, long.MaxValue / 2),
                Sampler = options.GetValueOrDefault("sampler")?.ToLowerInvariant() switch
                {
                    null => defaults.Sampler,
                    "euler" => SamplerKind.Euler,
                    "midpoint" => SamplerKind.Midpoint,
                    var other => throw new FormatException($"--sampler must be euler or midpoint, got '{other}'"),
                },
                CfgTrunc = Double(options, "cfg-trunc", defaults.CfgTrunc),
                RenormCfg = Double(options, "renorm", defaults.RenormCfg),
                Shift = Double(options, "shift", defaults.Shift),
                SystemPrompt = options.GetValueOrDefault("system-prompt", defaults.SystemPrompt),
            };
            NewBiePipeline.Validate(request);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }

        var modelsOptions = new ModelsOptions
        {
            Model = options.GetValueOrDefault("model", ModelsOptions.Auto),
            ModelsDir = options.GetValueOrDefault("models-dir", new ModelsOptions().ModelsDir),
        };
        var dataDir = AppInfo.ResolvePath(options.GetValueOrDefault("data-dir", new StorageOptions().DataDir));

        ModelChoice choice;
        IImageGenerator engine;
        try
        {
            choice = ModelChoice.Resolve(modelsOptions);
            if (choice.IsTiny) AnsiConsole.MarkupLineInterpolated($"[yellow]Model: {choice.Id} — {choice.Reason}[/]");
            engine = AnsiConsole.Status().Start($"Loading {choice.Id}…", _ => choice.IsTiny
                ? NewBiePipeline.Load(TinyModel.EnsureFolder(Path.Combine(dataDir, "tiny-model")), PipelineConfig.Tiny)
                : NewBiePipeline.Load(choice.WeightsDir!, PipelineConfig.NewBieExp01));
        }
        catch (Exception e) when (e is EngineUnavailableException or IOException or InvalidDataException or Pipeline.Weights.WeightLoadException)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }

        using (engine)
        {
            AnsiConsole.MarkupLineInterpolated($"{engine.Model.Id} on {engine.Model.Device} ({engine.Model.DType}), loaded in {engine.Model.LoadTime.TotalSeconds:0.0} s");
            GenerationResult result = null!;
            AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .Start(ctx =>
                {
                    var bar = ctx.AddTask("encoding", maxValue: request.Steps * request.Count);
                    result = engine.Generate(request, new BarProgress(bar), CancellationToken.None);
                    bar.Value = bar.MaxValue;
                });

            var files = new List<string>();
            foreach (var image in result.Images)
            {
                var path = result.Images.Count == 1 ? output : NumberedPath(output, image.Index);
                var full = Path.GetFullPath(path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                var temp = full + ".tmp";
                File.WriteAllBytes(temp, PngWriter.Encode(image, GenerationMetadata.For(request, image, engine.Model.Id)));
                File.Move(temp, full, overwrite: true);
                files.Add(full);
            }
            if (result.Prompt.GemmaTokensDropped > 0)
                AnsiConsole.MarkupLineInterpolated($"[yellow]The prompt was cut to {result.Prompt.GemmaTokens} Gemma tokens ({result.Prompt.GemmaTokensDropped} dropped).[/]");
            foreach (var file in files) Console.WriteLine(file);
        }
        return 0;
    }

    private static string NumberedPath(string path, int index) =>
        Path.Combine(Path.GetDirectoryName(path) ?? "", $"{Path.GetFileNameWithoutExtension(path)}-{index}{Path.GetExtension(path)}");

    private static Dictionary<string, string> Parse(string[] args)
    {
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2) throw new ArgumentException($"unexpected argument '{arg}'");
            var eq = arg.IndexOf('=');
            if (eq > 0) options[arg[2..eq]] = arg[(eq + 1)..];
            else if (i + 1 < args.Length) options[arg[2..]] = args[++i];
            else throw new ArgumentException($"{arg} needs a value");
        }
        return options;
    }

    private static int Int(Dictionary<string, string> o, string key, int fallback) =>
        o.TryGetValue(key, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    private static double Double(Dictionary<string, string> o, string key, double fallback) =>
        o.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

    /// <summary>Stage and step on the bar; runs on the generating thread, which is what Spectre's progress expects.</summary>
    private sealed class BarProgress(ProgressTask bar) : IProgress<StepProgress>
    {
        public void Report(StepProgress p)
        {
            bar.Description = p.Images > 1 ? $"{p.Stage.ToString().ToLowerInvariant()} {p.Image + 1}/{p.Images}" : p.Stage.ToString().ToLowerInvariant();
            if (p.Stage == GenerationStage.Denoising) bar.Value = p.Image * p.Steps + p.Step;
        }
    }
}
