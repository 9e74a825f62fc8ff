using System.Diagnostics;
using Microsoft.Extensions.Options;
using NewBie.Host.Models;
using NewBie.Host.Outputs;
using NewBie.Host.Telemetry;
using NewBie.Pipeline;
using NewBie.Pipeline.Memory;

namespace NewBie.Host.Jobs;

/// <summary>
/// The Hangfire entry point of a generation, run by the single worker of the "gpu" queue. It takes only the job id
/// and is reentrant: whatever the record says is finished is never run again, and a re-run (after a crash)
/// overwrites the same output files, so a job ends with exactly one set of images.
/// </summary>
public sealed class GpuJob(
    JobStore jobs,
    RunningJobs running,
    JobQueue jobQueue,
    IQueueSnapshot queue,
    RunTimeStats stats,
    OutputStore outputs,
    EngineHost engines,
    MemoryAdmission admission,
    IOptions<JobsOptions> options,
    TimeProvider time,
    NewBieMetrics metrics,
    ILogger<GpuJob> logger)
{
    public async Task RunAsync(string jobId, CancellationToken cancellationToken)
    {
        var job = jobs.Find(jobId);
        if (job is null || job.IsFinished) return;
        using var logContext = LoggingSetup.JobContext(jobId, job.UserId);

        if (job.Status == JobStatus.Queued && time.GetUtcNow().UtcDateTime - job.CreatedAt > options.Value.MaxQueueWait)
        {
            Finish(jobId, JobStatus.Expired, null);
            return;
        }

        IImageGenerator engine;
        try
        {
            engine = engines.Engine ?? await engines.WaitReadyAsync(cancellationToken);
        }
        catch (EngineUnavailableException e)
        {
            Finish(jobId, JobStatus.Failed, new JobError { Code = JobErrorCodes.Internal, Message = e.Message });
            return;
        }

        using var userCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Started by CancelAfter below: waiting for GPU memory is not run time.
        using var timeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        using var run = CancellationTokenSource.CreateLinkedTokenSource(userCancel.Token, timeout.Token);
        // Registered before the record says running, so that a cancel arriving in between still reaches this run.
        using var registration = running.Register(jobId, userCancel);

        // A job that must wait for memory shows it from its first running state on, never a premature "encoding".
        var (firstVerdict, firstMessage) = admission.Check(engine.Model.Device, engine.EstimateMemory(job.Params.ToRequest() with { TiledDecode = job.Degraded }));
        var mustWait = firstVerdict == AdmissionVerdict.Wait;
        // The run's clock starts before the record says running (a caller that sees running may already count on it),
        // except for a job that waits for memory: its clock starts when it is admitted.
        if (!mustWait) timeout.CancelAfter(options.Value.MaxRunTime);
        job = jobs.Update(jobId, j =>
        {
            if (j.IsFinished || j.CancelRequested) return false;
            j.Status = JobStatus.Running;
            j.StartedAt = time.GetUtcNow().UtcDateTime;
            j.Stage = mustWait ? null : GenerationStage.Encoding;
            j.MemoryWait = mustWait ? firstMessage : null;
            j.Step = 0;
            j.Steps = j.Params.Steps * j.Params.Count;
            j.Images = [];
            j.Error = null;
            return true;
        });
        if (job is null || job.IsFinished) return;
        if (job.CancelRequested)
        {
            Finish(jobId, JobStatus.Canceled, null);
            return;
        }
        if (await AdmitAsync(engine, job, userCancel.Token) is not { } admitted) return;
        if (mustWait) timeout.CancelAfter(options.Value.MaxRunTime);
        job = admitted;
        queue.Claimed(job);
        metrics.JobStarted(job, job.StartedAt!.Value - job.CreatedAt);
        logger.LogInformation("Running job {JobId} of {UserId}, attempt {Attempt}", jobId, job.UserId, job.Attempts);

        var clock = Stopwatch.StartNew();
        try
        {
            var request = job.Params.ToRequest();
            if (GenerateRecovering(engine, job, request, run.Token) is not { } result) return;
            var images = outputs.Write(job, request, engine.Model.Id, result.Images);
            jobs.Update(jobId, j =>
            {
                if (j.IsFinished) return false;
                j.Status = JobStatus.Succeeded;
                j.Images = images;
                j.Step = j.Steps;
                j.FinishedAt = time.GetUtcNow().UtcDateTime;
                return true;
            });
            stats.Record(job.Params, clock.Elapsed);
            metrics.ImagesGenerated(job.UserId, images.Count);
            logger.LogInformation("Job {JobId} succeeded in {ElapsedMs} ms", jobId, clock.ElapsedMilliseconds);
        }
        catch (OperationCanceledException) when (jobs.Find(jobId)?.CancelRequested == true)
        {
            Finish(jobId, JobStatus.Canceled, null);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Finish(jobId, JobStatus.Failed, new JobError { Code = JobErrorCodes.Timeout, Message = $"The run took longer than {options.Value.MaxRunTime}." });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Server shutdown: the record stays running and the job runs again after restart (attempt + 1).
            logger.LogWarning("Job {JobId} interrupted by shutdown", jobId);
            throw;
        }
        catch (InsufficientStorageException e)
        {
            // Failed, not retried: the disk may stay full for hours, and a terminal state the client sees beats a silent wait.
            logger.LogError("Job {JobId} failed: {Message}", jobId, e.Message);
            Finish(jobId, JobStatus.Failed, new JobError { Code = JobErrorCodes.InsufficientStorage, Message = e.Message });
        }
        catch (Exception e)
        {
            var outOfMemory = OutOfMemory.IsOutOfMemory(e);
            if (outOfMemory) logger.LogError(e, "Job {JobId} failed: out of GPU memory even degraded and after its re-queue", jobId);
            else logger.LogError(e, "Job {JobId} failed", jobId);
            Finish(jobId, JobStatus.Failed, new JobError
            {
                Code = outOfMemory ? JobErrorCodes.OutOfMemory : JobErrorCodes.Internal,
                Message = outOfMemory ? "The GPU ran out of memory." : e.Message,
            });
        }
        metrics.GpuTime(job.UserId, clock.Elapsed);
        if (jobs.Find(jobId) is { IsFinished: true } done) metrics.JobRan(done.Status, clock.Elapsed);
    }

    /// <summary>
    /// VRAM-aware admission (design.md §5): starts the job only when free GPU memory covers its estimate; otherwise the
    /// job waits in the stage waiting_for_memory, polling every Jobs:MemoryPollInterval, until memory frees or it is
    /// cancelled. A job too big for the GPU even when it is empty runs degraded (tiled VAE decode) from the start when
    /// that fits, and fails out_of_memory at once otherwise. Returns the record to run, or null when it finished here.
    /// </summary>
    private async Task<JobRecord?> AdmitAsync(IImageGenerator engine, JobRecord job, CancellationToken cancel)
    {
        var request = job.Params.ToRequest() with { TiledDecode = job.Degraded };
        var need = engine.EstimateMemory(request);
        var waited = false;
        while (true)
        {
            var (verdict, message) = admission.Check(engine.Model.Device, need);
            if (verdict == AdmissionVerdict.Start) break;
            if (verdict == AdmissionVerdict.Never && !request.TiledDecode)
            {
                var tiled = engine.EstimateMemory(request with { TiledDecode = true });
                if (admission.Check(engine.Model.Device, tiled).Verdict != AdmissionVerdict.Never)
                {
                    logger.LogWarning("Job {JobId} runs degraded from the start (tiled VAE decode): {Message}", job.Id, message);
                    job = jobs.Update(job.Id, j =>
                    {
                        j.Degraded = true;
                        return true;
                    }) ?? job;
                    (request, need) = (request with { TiledDecode = true }, tiled);
                    continue;
                }
            }
            if (verdict == AdmissionVerdict.Never)
            {
                logger.LogError("Job {JobId} can never fit: {Message}", job.Id, message);
                Finish(job.Id, JobStatus.Failed, new JobError { Code = JobErrorCodes.OutOfMemory, Message = message });
                return null;
            }
            if (!waited) logger.LogWarning("Job {JobId} waits for GPU memory: {Message}", job.Id, message);
            waited = true;
            jobs.Update(job.Id, j =>
            {
                j.MemoryWait = message;
                j.Stage = null;
                return true;
            });
            try
            {
                await Task.Delay(options.Value.MemoryPollInterval, time, cancel);
            }
            // Asked of the record, as in the run itself: a user's cancel also deletes the Hangfire job, whose watcher then
            // cancels Hangfire's token too, so that token cannot tell a cancel from a shutdown (which rethrows here).
            catch (OperationCanceledException) when (jobs.Find(job.Id)?.CancelRequested == true)
            {
                Finish(job.Id, JobStatus.Canceled, null);
                return null;
            }
        }
        admission.Started(need);
        if (!waited) return job;
        logger.LogInformation("Job {JobId} admitted: GPU memory is free now", job.Id);
        return jobs.Update(job.Id, j =>
        {
            j.MemoryWait = null;
            j.Stage = GenerationStage.Encoding;
            j.StartedAt = time.GetUtcNow().UtcDateTime;
            return true;
        }) ?? job;
    }

    /// <summary>
    /// Runs the engine with the out-of-memory recovery of design.md §5: free what can be freed and retry degraded
    /// (tiled VAE decode; the engine already makes one image of a count at a time), and if that runs out of memory
    /// too, re-queue the job once after a delay and return null. Any later out-of-memory propagates (out_of_memory).
    /// </summary>
    private GenerationResult? GenerateRecovering(IImageGenerator engine, JobRecord job, GenerationRequest request, CancellationToken token)
    {
        var progress = new JobProgress(jobs, job.Id, metrics);
        var pipeline = engine as NewBiePipeline;
        Action<bool> countLookup = hit => { if (hit) metrics.PromptCacheHit(); else metrics.PromptCacheMiss(); };
        if (pipeline is not null) pipeline.PromptCacheLookup += countLookup;
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
                    jobs.Update(job.Id, j =>
                    {
                        j.Degraded = true;
                        j.OomRetries++;
                        return true;
                    });
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
                var requeued = jobs.Update(job.Id, j =>
                {
                    if (j.IsFinished || j.CancelRequested) return false;
                    j.OomRequeued = true;
                    j.OomRetries++;
                    // Behind every normal and high job queued meanwhile, which are often lighter: the memory they leave may be enough.
                    j.Priority = JobPriority.Low;
                    j.Status = JobStatus.Queued;
                    j.Stage = null;
                    j.Step = 0;
                    return true;
                });
                if (requeued is null) throw;
                logger.LogWarning("Job {JobId} ran out of GPU memory again degraded ({Message}); re-queued at low priority to run once more in {Delay}", job.Id, e.Message, delay);
                jobQueue.Requeue(requeued, delay);
                return null;
            }
        }
        finally
        {
            if (pipeline is not null) pipeline.PromptCacheLookup -= countLookup;
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

    private void Finish(string jobId, JobStatus status, JobError? error)
    {
        var finished = false;
        jobs.Update(jobId, j =>
        {
            if (j.IsFinished) return false;
            j.Status = status;
            j.Error = error;
            j.FinishedAt = time.GetUtcNow().UtcDateTime;
            return finished = true;
        });
        if (finished && error is not null) metrics.JobFailed(error.Code);
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
            jobs.Update(jobId, j =>
            {
                j.Stage = value.Stage;
                j.Steps = value.Steps * value.Images;
                j.Step = value.Image * value.Steps + value.Step;
                return true;
            });
        }
    }
}
