using System.Diagnostics;
using Microsoft.Extensions.Options;
using NewBie.Host.Telemetry;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Jobs;

/// <summary>
/// Runs the engine with the out-of-memory recovery of design.md §5: free what can be freed and retry degraded (tiled
/// VAE decode; the engine already makes one image of a count at a time), and if that runs out of memory too, re-queue
/// the job once after a delay. Any later out-of-memory propagates (out_of_memory). Progress goes to the job record.
/// </summary>
public sealed class OutOfMemoryRecovery(JobStore jobs, JobQueue queue, NewBieMetrics metrics, IOptions<JobsOptions> options, ILogger<OutOfMemoryRecovery> logger)
{
    /// <summary>The result, or null when the job went back to the queue.</summary>
    public GenerationResult? Generate(IImageGenerator engine, JobRecord job, GenerationRequest request, CancellationToken token)
    {
        var progress = new JobProgress(jobs, job.Id, metrics);
        Action<bool> countLookup = hit => { if (hit) metrics.PromptCacheHit(); else metrics.PromptCacheMiss(); };
        engine.PromptCacheLookup += countLookup;
        try
        {
            if (!job.Degraded)
            {
                try
                {
                    return engine.Generate(request, progress, token);
                }
                catch (Exception e) when (OutOfMemory.IsOutOfMemory(e))
                {
                    FreeMemory();
                    logger.LogWarning("Job {JobId} ran out of GPU memory ({Message}); retrying degraded with tiled VAE decode", job.Id, e.Message);
                    jobs.Update(job.Id, j => j.Degrade(afterOutOfMemory: true));
                }
            }
            try
            {
                return engine.Generate(request with { TiledDecode = true }, progress, token);
            }
            catch (Exception e) when (OutOfMemory.IsOutOfMemory(e) && !job.OomRequeued)
            {
                FreeMemory();
                var delay = options.Value.OomRequeueDelay;
                var requeued = jobs.Update(job.Id, j => j.RequeueAfterOutOfMemory());
                if (requeued is not { Status: JobStatus.Queued }) throw;
                logger.LogWarning("Job {JobId} ran out of GPU memory again degraded ({Message}); re-queued at low priority to run once more in {Delay}", job.Id, e.Message, delay);
                queue.Requeue(requeued, delay);
                return null;
            }
        }
        finally
        {
            engine.PromptCacheLookup -= countLookup;
        }
    }

    /// <summary>
    /// Lets the tensors of the failed run go: TorchSharp frees device memory when tensors are finalized, and has no
    /// torch.cuda.empty_cache, so collecting is what can be done from here.
    /// </summary>
    private static void FreeMemory()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>Writes progress synchronously on the generating thread (Progress&lt;T&gt; would post it elsewhere, out of order).</summary>
    private sealed class JobProgress(JobStore jobs, string jobId, NewBieMetrics metrics) : IProgress<StepProgress>
    {
        private readonly Stopwatch _sinceLastReport = Stopwatch.StartNew();

        public void Report(StepProgress value)
        {
            // Denoising reports step 0 when it starts and every step after, so the time since the last report is one step.
            if (value is { Stage: GenerationStage.Denoising, Step: > 0 }) metrics.DenoiseStep(_sinceLastReport.Elapsed);
            _sinceLastReport.Restart();
            // Not durable: a step lost with a crash of the database is superseded by the next one or by the job's end.
            jobs.Update(jobId, j => j.Report(value.Stage, value.Image * value.Steps + value.Step, value.Steps * value.Images), durable: false);
        }
    }
}
