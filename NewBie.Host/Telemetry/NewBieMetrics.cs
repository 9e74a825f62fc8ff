using System.Diagnostics.Metrics;
using NewBie.Host.Jobs;
using NewBie.Host.Models;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Telemetry;

/// <summary>
/// Every metric of the server, on the Meter "NewBie" (so dotnet-counters sees them too); <see cref="PrometheusExporter"/>
/// publishes them on /metrics. Instrument names are already Prometheus names. Features record through the methods
/// here, never through the instruments. Gauges are read at scrape time from their owners.
/// </summary>
public sealed class NewBieMetrics
{
    public const string MeterName = "NewBie";

    private static readonly double[] WaitBuckets = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14400];
    private static readonly double[] RunBuckets = [0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800];
    private static readonly double[] StepBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

    private readonly Histogram<double> _jobWait, _jobRun, _denoiseStep;
    private readonly Counter<long> _images, _failures, _rateLimited, _promptCacheHits, _promptCacheMisses;
    private readonly Counter<double> _gpuSeconds;

    public NewBieMetrics(IMeterFactory meters, JobStore jobs, EngineHost engines, IGpuMemory gpu)
    {
        // Created through the factory, not "new Meter": two servers in one process (tests) keep separate meters.
        Meter = meters.Create(MeterName);
        _jobWait = Histogram("newbie_job_wait_seconds", "Seconds from submit to the start of a job's run, by priority.", WaitBuckets);
        _jobRun = Histogram("newbie_job_run_seconds", "Seconds a job ran on the GPU worker, by final status.", RunBuckets);
        _denoiseStep = Histogram("newbie_denoise_step_seconds", "Seconds per denoising step.", StepBuckets);
        _images = Meter.CreateCounter<long>("newbie_images_generated_total", description: "Images generated, by user.");
        _gpuSeconds = Meter.CreateCounter<double>("newbie_gpu_seconds_total", unit: "s", description: "Seconds the GPU worker spent running jobs, by user.");
        _failures = Meter.CreateCounter<long>("newbie_job_failures_total", description: "Failed jobs, by error code.");
        _rateLimited = Meter.CreateCounter<long>("newbie_rate_limited_total", description: "Requests refused by a rate limit, by reason.");
        _promptCacheHits = Meter.CreateCounter<long>("newbie_prompt_cache_hits_total", description: "Prompt embeddings served from the cache.");
        _promptCacheMisses = Meter.CreateCounter<long>("newbie_prompt_cache_misses_total", description: "Prompt embeddings computed because the cache did not have them.");

        Meter.CreateObservableGauge("newbie_queue_depth", () => QueueDepth(jobs), description: "Queued jobs, by priority.");
        Meter.CreateObservableGauge("newbie_model_load_seconds", () => ModelLoad(engines), unit: "s", description: "Seconds the loaded model took to load.");
        // Unset (no series) while the engine is not on a CUDA device or the driver cannot say: 0 would read as a full GPU.
        Meter.CreateObservableGauge("newbie_gpu_memory_used_bytes", () => GpuMemory(engines, gpu, used: true), unit: "By", description: "GPU memory in use on the engine's device (all processes).");
        Meter.CreateObservableGauge("newbie_gpu_memory_free_bytes", () => GpuMemory(engines, gpu, used: false), unit: "By", description: "GPU memory free on the engine's device.");
        Meter.CreateObservableGauge("newbie_gpu_memory_total_bytes", () => GpuMemoryTotal(engines, gpu), unit: "By", description: "GPU memory in all on the engine's device.");
        Meter.CreateObservableGauge("newbie_memory_plan", () => Plan(engines), description: "1 for the memory plan of the loaded engine (all-resident, encoders-on-demand, encoders-on-cpu).");
    }

    public Meter Meter { get; }

    public void JobStarted(JobRecord job, TimeSpan waited) =>
        _jobWait.Record(Math.Max(0, waited.TotalSeconds), new KeyValuePair<string, object?>("priority", JobPriority.Name(job.Priority)));

    public void JobRan(JobStatus status, TimeSpan elapsed) =>
        _jobRun.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("status", status.ToString().ToLowerInvariant()));

    public void DenoiseStep(TimeSpan elapsed) => _denoiseStep.Record(elapsed.TotalSeconds);

    public void ImagesGenerated(string userId, int count) => _images.Add(count, new KeyValuePair<string, object?>("user", userId));

    /// <summary>Worker time of one run, charged to the job's owner (whatever the run's outcome).</summary>
    public void GpuTime(string userId, TimeSpan elapsed) => _gpuSeconds.Add(elapsed.TotalSeconds, new KeyValuePair<string, object?>("user", userId));

    public void JobFailed(string code) => _failures.Add(1, new KeyValuePair<string, object?>("code", code));

    /// <summary>For every rate limit and quota that refuses a request; <paramref name="reason"/> is a short stable code.</summary>
    public void RateLimited(string reason) => _rateLimited.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void PromptCacheHit() => _promptCacheHits.Add(1);

    public void PromptCacheMiss() => _promptCacheMisses.Add(1);

    private Histogram<double> Histogram(string name, string description, double[] buckets) =>
        Meter.CreateHistogram(name, unit: "s", description: description, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    private static IEnumerable<Measurement<int>> QueueDepth(JobStore jobs)
    {
        var byPriority = jobs.WithStatus(JobStatus.Queued).GroupBy(j => j.Priority).ToDictionary(g => g.Key, g => g.Count());
        return new[] { JobPriority.Low, JobPriority.Normal, JobPriority.High }.Select(p =>
            new Measurement<int>(byPriority.GetValueOrDefault(p), new KeyValuePair<string, object?>("priority", JobPriority.Name(p))));
    }

    private static IEnumerable<Measurement<double>> ModelLoad(EngineHost engines) =>
        engines.Engine?.Model is { } model
            ? [new Measurement<double>(model.LoadTime.TotalSeconds, new KeyValuePair<string, object?>("model", model.Id))]
            : [];

    private static IEnumerable<Measurement<long>> GpuMemoryTotal(EngineHost engines, IGpuMemory gpu) =>
        engines.Engine?.Model.Device is { } device && gpu.Query(device) is { } memory
            ? [new Measurement<long>(memory.TotalBytes)]
            : [];

    private static IEnumerable<Measurement<int>> Plan(EngineHost engines) =>
        engines.Engine?.Model is { } model
            ? [new Measurement<int>(1, new KeyValuePair<string, object?>("plan", model.MemoryPlan.Name()))]
            : [];

    private static IEnumerable<Measurement<long>> GpuMemory(EngineHost engines, IGpuMemory gpu, bool used) =>
        engines.Engine?.Model.Device is { } device && gpu.Query(device) is { } memory
            ? [new Measurement<long>(used ? memory.UsedBytes : memory.FreeBytes)]
            : [];
}
