using Microsoft.Extensions.Options;
using NewBie.Pipeline;

namespace NewBie.Host.Models;

/// <summary>
/// Engine:StandIn — for benchmarks of the serving side only (several nodes on one machine whose CPUs would otherwise
/// bound the result). Never set it on a server people use: its images are a gradient, not a generation.
/// </summary>
public sealed class StandInOptions
{
    public const string Section = "Engine:StandIn";

    /// <summary>
    /// When set, the node serves with a stand-in engine that takes exactly this long per job (spread over its steps,
    /// cancellable between them) and returns gradient PNGs of the requested size through the normal output path,
    /// instead of loading a model. Unset (the default): the real engine. Restart needed.
    /// </summary>
    public TimeSpan? ServiceTime { get; set; }
}

/// <summary>
/// The stand-in engine of <see cref="StandInOptions"/>: a fixed service time that waits instead of computing, so that
/// node count, not this machine's cores, decides a multi-node benchmark's throughput. It reports every stage and step
/// like the real engine and honours cancellation between steps; its images are of the requested size and seed.
/// </summary>
public sealed class StandInEngine(TimeSpan serviceTime) : IImageGenerator
{
    public ModelInfo Model { get; } = new("stand-in", IsTiny: true, Device: "cpu", DType: "none", LoadTime: TimeSpan.Zero);

    /// <summary>One token per whitespace-separated word: the submit-time checks need a count, not the real tokenizer.</summary>
    public PromptReport Inspect(string prompt, string systemPrompt)
    {
        var tokens = prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        return new PromptReport(tokens, 0, tokens, 0, systemPrompt);
    }

    public GenerationResult Generate(GenerationRequest request, IProgress<StepProgress>? progress, CancellationToken cancellationToken)
    {
        var steps = Math.Max(1, request.Steps) * request.Count;
        var perStep = serviceTime / steps;
        var images = new List<GeneratedImage>(request.Count);
        for (var i = 0; i < request.Count; i++)
        {
            progress?.Report(new StepProgress(GenerationStage.Encoding, 0, request.Steps, i, request.Count));
            progress?.Report(new StepProgress(GenerationStage.Denoising, 0, request.Steps, i, request.Count));
            for (var step = 1; step <= request.Steps; step++)
            {
                // Waits on the token, so a cancel ends the wait at once rather than after the step.
                if (cancellationToken.WaitHandle.WaitOne(perStep)) cancellationToken.ThrowIfCancellationRequested();
                progress?.Report(new StepProgress(GenerationStage.Denoising, step, request.Steps, i, request.Count));
            }
            progress?.Report(new StepProgress(GenerationStage.Decoding, request.Steps, request.Steps, i, request.Count));
            images.Add(new GeneratedImage(i, request.Width, request.Height, request.Seed + i, Gradient(request.Width, request.Height, request.Seed + i)));
        }
        return new GenerationResult(images, Inspect(request.Prompt, request.SystemPrompt), Inspect(request.NegativePrompt, request.SystemPrompt));
    }

    /// <summary>Red rises left to right, green top to bottom, blue is the seed: tells images of one job apart.</summary>
    public static byte[] Gradient(int width, int height, long seed)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var o = (y * width + x) * 3;
                rgb[o] = (byte)(x * 255 / Math.Max(1, width - 1));
                rgb[o + 1] = (byte)(y * 255 / Math.Max(1, height - 1));
                rgb[o + 2] = (byte)(seed & 0xFF);
            }
        return rgb;
    }

    public void Dispose() { }
}

/// <summary>Chosen instead of <see cref="PipelineEngineFactory"/> when Engine:StandIn:ServiceTime is set.</summary>
public sealed class StandInEngineFactory(IOptions<StandInOptions> options) : IEngineFactory
{
    public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken) => new StandInEngine(options.Value.ServiceTime!.Value);
}
