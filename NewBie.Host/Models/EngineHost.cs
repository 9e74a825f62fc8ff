using Microsoft.Extensions.Options;
using NewBie.Host.Storage;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Models;

public sealed class EngineUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Builds the engine for a model choice. The one place where the inference pipeline is constructed.</summary>
public interface IEngineFactory
{
    IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken);
}

/// <summary>
/// The production factory: the real NewBie-image-Exp0.1 weights from the models folder, or the built-in tiny model,
/// which is written once into the data folder (same layout, same loading code, random weights).
/// </summary>
public sealed class PipelineEngineFactory(DataDirectory dataDirectory, MemoryPlanner planner, IOptions<ModelsOptions> options) : IEngineFactory
{
    public IImageGenerator Create(ModelChoice choice, CancellationToken cancellationToken)
    {
        var config = choice.IsTiny ? PipelineConfig.Tiny : PipelineConfig.NewBieExp01;
        var folder = choice.IsTiny ? TinyModel.EnsureFolder(dataDirectory.TinyModelPath) : choice.WeightsDir!;
        var (device, dtype) = NewBiePipeline.DefaultDevice();
        var pipelineOptions = PipelineOptions.FromEnvironment() with
        {
            MemoryPlan = planner.Decide(config, device, dtype),
            PromptCacheBytes = options.Value.PromptCacheBytes,
        };
        return NewBiePipeline.Load(folder, config, device, dtype, pipelineOptions);
    }
}

public enum EngineState { Loading, Ready, Unavailable }

/// <summary>
/// Owns the one engine of the process: loads it in the background at start (the API answers meanwhile), reports
/// readiness, and hands it to the GPU worker.
/// </summary>
public sealed class EngineHost(IEngineFactory factory, IOptions<ModelsOptions> options, ILogger<EngineHost> logger) : IHostedService, IDisposable
{
    private readonly TaskCompletionSource<IImageGenerator> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();

    public EngineState State { get; private set; } = EngineState.Loading;

    /// <summary>Why the engine is not ready (loading, or the error that stopped it).</summary>
    public string? Problem { get; private set; } = "the model is loading";

    public ModelChoice? Choice { get; private set; }

    /// <summary>The process's peak resident host memory once loading finished (VmHWM on Linux); null before.</summary>
    public long? PeakHostBytesAfterLoad { get; private set; }

    public IImageGenerator? Engine => State == EngineState.Ready ? _ready.Task.Result : null;

    public Task<IImageGenerator> WaitReadyAsync(CancellationToken cancellationToken) => _ready.Task.WaitAsync(cancellationToken);

    /// <summary>
    /// Returns once loading has ended, the engine ready or unavailable (at once when it already has), or after
    /// <paramref name="timeout"/> or cancellation, whichever comes first; never throws. What /readyz?wait= waits for.
    /// </summary>
    public async Task WaitLoadedAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_ready.Task.IsCompleted || timeout <= TimeSpan.Zero) return;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await Task.WhenAny(_ready.Task, Task.Delay(timeout, stop.Token));
        await stop.CancelAsync();
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _ = Task.Run(Load, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping.Cancel();
        return Task.CompletedTask;
    }

    private void Load()
    {
        try
        {
            var choice = ModelChoice.Resolve(options.Value);
            Choice = choice;
            if (choice.IsTiny) logger.LogWarning("Model: {Model} ({Reason})", choice.Id, choice.Reason);
            else logger.LogInformation("Model: {Model} ({Reason})", choice.Id, choice.Reason);
            var peakBefore = PeakHostBytes();
            var engine = factory.Create(choice, _stopping.Token);
            PeakHostBytesAfterLoad = PeakHostBytes();
            Problem = null;
            State = EngineState.Ready;
            _ready.TrySetResult(engine);
            // Weights are streamed from the mapped files to the device, so the peak should stay near the one before.
            logger.LogInformation("Engine ready: {Model} on {Device} ({DType}), memory plan {MemoryPlan}, loaded in {LoadMs} ms; peak host RAM {PeakHostMiB} MiB ({PeakHostBeforeMiB} MiB before loading)",
                engine.Model.Id, engine.Model.Device, engine.Model.DType, engine.Model.MemoryPlan.Name(), (long)engine.Model.LoadTime.TotalMilliseconds,
                PeakHostBytesAfterLoad >> 20, peakBefore >> 20);
            // What was loaded, in the words `models verify` uses for the same folder.
            if (engine is NewBiePipeline { Plan: { } plan })
                foreach (var component in plan.Components)
                    logger.LogInformation("Loaded {Component}: {Plan}", component.Component, component.Summary);
        }
        catch (Exception e)
        {
            Problem = e.Message;
            State = EngineState.Unavailable;
            _ready.TrySetException(e as EngineUnavailableException ?? new EngineUnavailableException($"The engine failed to load: {e.Message}", e));
            logger.LogError("No engine: {Problem}", e.Message);
        }
    }

    private static long PeakHostBytes()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.PeakWorkingSet64;
    }

    public void Dispose()
    {
        // _stopping is left to the GC: it has no timer, and the host may still call StopAsync after disposing services.
        if (State == EngineState.Ready) _ready.Task.Result.Dispose();
    }
}

public static class ModelsSetup
{
    public static IHostApplicationBuilder AddModels(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ModelsOptions>().BindConfiguration(ModelsOptions.Section)
            .Validate(o => o.Model is ModelsOptions.Auto or ModelsOptions.Tiny or ModelsOptions.NewBieExp01, "Models:Model must be auto, tiny or newbie-exp0.1.")
            .Validate(o => o.MemoryPlan == MemoryPlans.Auto || MemoryPlans.Parse(o.MemoryPlan) is not null, "Models:MemoryPlan must be auto, all-resident, encoders-on-demand or encoders-on-cpu.")
            .Validate(o => o.PromptCacheBytes >= 0, "Models:PromptCacheBytes cannot be negative.")
            .ValidateOnStart();
        builder.Services.AddOptions<StandInOptions>().BindConfiguration(StandInOptions.Section)
            .Validate(o => o.ServiceTime is null || o.ServiceTime >= TimeSpan.Zero, "Engine:StandIn:ServiceTime cannot be negative.")
            .ValidateOnStart();
        builder.Services.AddSingleton<MemoryPlanner>();
        // The bench's stand-in (Engine:StandIn:ServiceTime) replaces the model; nothing else changes. Chosen when resolved,
        // so that settings added after this line (a test host's) count.
        builder.Services.AddSingleton<IEngineFactory>(sp => sp.GetRequiredService<IOptions<StandInOptions>>().Value.ServiceTime is not null
            ? ActivatorUtilities.CreateInstance<StandInEngineFactory>(sp)
            : ActivatorUtilities.CreateInstance<PipelineEngineFactory>(sp));
        builder.Services.AddSingleton<EngineHost>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EngineHost>());
        return builder;
    }
}
