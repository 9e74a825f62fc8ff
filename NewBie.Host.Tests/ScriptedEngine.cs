using NewBie.Host.Models;
using NewBie.Pipeline;

namespace NewBie.Host.Tests;

/// <summary>
/// A stand-in for NewBiePipeline with exact, controllable timing: reports every stage and step, checks the token
/// before each step, can be held at a step until released, and returns small deterministic RGB images
/// (red = x ramp, green = y ramp, blue = seed).
/// </summary>
public sealed class ScriptedEngine : IImageGenerator
{
    private readonly ManualResetEventSlim _open = new(initialState: true);
    private readonly SemaphoreSlim _stepped = new(0);
    private int _stepsRun;
    private int _runs;

    /// <summary>Settable so a test can claim a CUDA device (with a simulated IGpuMemory) for admission.</summary>
    public ModelInfo Model { get; set; } = new("scripted", IsTiny: true, Device: "cpu", DType: "float32", LoadTime: TimeSpan.Zero);

    /// <summary>What <see cref="EstimateMemory"/> answers for every request; nothing by default (as on a CPU).</summary>
    public MemoryNeed MemoryNeed { get; set; }

    /// <summary>The answer for requests with tiled VAE decode, when it differs.</summary>
    public MemoryNeed? TiledMemoryNeed { get; set; }

    public MemoryNeed EstimateMemory(GenerationRequest request) =>
        request.TiledDecode && TiledMemoryNeed is { } tiled ? tiled : MemoryNeed;

    /// <summary>The request of the latest run.</summary>
    public GenerationRequest? LastRequest { get; private set; }

    /// <summary>Gemma tokens the stand-in "fits"; one token per whitespace-separated word.</summary>
    public int GemmaWindow { get; set; } = 512;

    public TimeSpan StepDelay { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Images come back one byte short, which the PNG writer refuses: a failure after the run, on the server's side.</summary>
    public bool TruncatedImages { get; set; }

    /// <summary>Thrown by the next run instead of generating.</summary>
    public Exception? Failure { get; set; }

    public int StepsRun => Volatile.Read(ref _stepsRun);

    public int Runs => Volatile.Read(ref _runs);

    /// <summary>The prompts of every run, in the order the runs started (what the GPU worker actually claimed).</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> RunOrder { get; } = new();

    /// <summary>Every following step waits until <see cref="Release"/> (or cancellation).</summary>
    public void Hold() => _open.Reset();

    public void Release() => _open.Set();

    private readonly ManualResetEventSlim _resume = new(initialState: true);
    private (string Prompt, int Step)? _pause;

    /// <summary>The run of <paramref name="prompt"/> stops right after reporting <paramref name="step"/> until <see cref="Resume"/>.</summary>
    public void PauseAfter(string prompt, int step)
    {
        _pause = (prompt, step);
        _resume.Reset();
    }

    public void Resume() => _resume.Set();

    /// <summary>Waits until some run has completed <paramref name="count"/> steps in total.</summary>
    public async Task WaitForStepsAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (StepsRun < count) await _stepped.WaitAsync(timeout.Token);
    }

    public PromptReport Inspect(string prompt, string systemPrompt)
    {
        var tokens = prompt.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        return new PromptReport(tokens, Math.Max(0, tokens - GemmaWindow), tokens, 0, systemPrompt);
    }

    public GenerationResult Generate(GenerationRequest request, IProgress<StepProgress>? progress, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _runs);
        LastRequest = request;
        RunOrder.Enqueue(request.Prompt);
        if (Failure is { } failure) throw failure;
        var images = new List<GeneratedImage>();
        for (var i = 0; i < request.Count; i++)
        {
            progress?.Report(new StepProgress(GenerationStage.Encoding, 0, request.Steps, i, request.Count));
            progress?.Report(new StepProgress(GenerationStage.Denoising, 0, request.Steps, i, request.Count));
            for (var step = 1; step <= request.Steps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                _open.Wait(cancellationToken);
                Thread.Sleep(StepDelay);
                Interlocked.Increment(ref _stepsRun);
                _stepped.Release();
                progress?.Report(new StepProgress(GenerationStage.Denoising, step, request.Steps, i, request.Count));
                if (_pause == (request.Prompt, step)) _resume.Wait(cancellationToken);
            }
            progress?.Report(new StepProgress(GenerationStage.Decoding, request.Steps, request.Steps, i, request.Count));
            var rgb = Pattern(request.Width, request.Height, request.Seed + i);
            images.Add(new GeneratedImage(i, request.Width, request.Height, request.Seed + i, TruncatedImages ? rgb[..^1] : rgb));
        }
        var report = Inspect(request.Prompt, request.SystemPrompt);
        return new GenerationResult(images, report, Inspect(request.NegativePrompt, request.SystemPrompt));
    }

    /// <summary>The stand-in engine's gradient: one picture of "what the fake engines draw" for tests to compare against.</summary>
    public static byte[] Pattern(int width, int height, long seed) => StandInEngine.Gradient(width, height, seed);

    public void Dispose()
    {
        _open.Set();
    }
}

public sealed class ScriptedEngineFactory(ScriptedEngine engine) : IEngineFactory
{
    public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken) => engine;
}
