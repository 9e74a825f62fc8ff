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
/// replaces the outputs an earlier attempt left, so a job ends with exactly one set of images. Admission waits for GPU memory
/// (<see cref="GpuAdmission"/>), the engine runs with out-of-memory recovery (<see cref="OutOfMemoryRecovery"/>); every
/// change of the job's state is one of <see cref="JobRecord"/>'s transitions.
/// </summary>
public sealed class GpuJob(
    JobStore jobs,
    RunningJobs running,
    EngineHost engines,
    GpuAdmission admission,
    OutOfMemoryRecovery recovery,
    RunTimeStats stats,
    OutputStore outputs,
    IOptions<JobsOptions> options,
    TimeProvider time,
    NewBieMetrics metrics,
    ILogger<GpuJob> logger)
{
    public async Task RunAsync(string jobId, CancellationToken cancellationToken)
    {
        var job = jobs.Find(jobId);
        if (job is null)
        {
            // A submit that failed between creating the Hangfire job and storing its record sent no 202: nobody waits
            // for this job, so it is dropped, but said so.
            logger.LogWarning("Job {JobId} has no record (its submit failed before answering); dropped without running", jobId);
            return;
        }
        if (job.IsFinished) return;
        using var logContext = LoggingSetup.JobContext(jobId, job.UserId);

        if (job.Status == JobStatus.Queued && Now - job.CreatedAt > options.Value.MaxQueueWait)
        {
            jobs.Update(jobId, j => j.Expire(Now));
            return;
        }

        IImageGenerator engine;
        try
        {
            engine = engines.Engine ?? await engines.WaitReadyAsync(cancellationToken);
        }
        catch (EngineUnavailableException e)
        {
            Fail(jobId, JobErrorCodes.Internal, e.Message);
            return;
        }

        using var userCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // Started by CancelAfter below: waiting for GPU memory is not run time.
        using var timeout = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        using var run = CancellationTokenSource.CreateLinkedTokenSource(userCancel.Token, timeout.Token);
        // Registered before the record says running, so that a cancel arriving in between still reaches this run.
        using var registration = running.Register(jobId, userCancel);

        // A job that must wait for memory shows it from its first running state on, never a premature "encoding".
        var memoryWait = admission.MustWait(engine, job);
        // The run's clock starts before the record says running (a caller that sees running may already count on it),
        // except for a job that waits for memory: its clock starts when it is admitted.
        if (memoryWait is null) timeout.CancelAfter(options.Value.MaxRunTime);
        job = jobs.Update(jobId, j => j.Start(Now, memoryWait));
        if (job is null || job.IsFinished) return;
        if (job.CancelRequested)
        {
            jobs.Update(jobId, j => j.EndCanceled(Now));
            return;
        }
        if (await admission.AdmitAsync(engine, job, userCancel.Token) is not { } admitted) return;
        if (memoryWait is not null) timeout.CancelAfter(options.Value.MaxRunTime);
        job = admitted;
        metrics.JobStarted(job, job.StartedAt!.Value - job.CreatedAt);
        logger.LogInformation("Running job {JobId} of {UserId}, attempt {Attempt}", jobId, job.UserId, job.Attempts);

        var clock = Stopwatch.StartNew();
        try
        {
            var request = job.Params.ToRequest();
            if (recovery.Generate(engine, job, request, run.Token) is not { } result) return;
            var images = await outputs.WriteAsync(job, request, engine.Model.Id, result.Images, cancellationToken);
            jobs.Update(jobId, j => j.Succeed(images, Now));
            stats.Record(job.Params, clock.Elapsed);
            metrics.ImagesGenerated(job.UserId, images.Count);
            logger.LogInformation("Job {JobId} succeeded in {ElapsedMs} ms", jobId, clock.ElapsedMilliseconds);
        }
        catch (OperationCanceledException) when (jobs.Find(jobId)?.CancelRequested == true)
        {
            jobs.Update(jobId, j => j.EndCanceled(Now));
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            Fail(jobId, JobErrorCodes.Timeout, $"The run took longer than {options.Value.MaxRunTime}.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Server shutdown: the record stays running and the job runs again after restart (attempt + 1).
            logger.LogWarning("Job {JobId} interrupted by shutdown", jobId);
            throw;
        }
        catch (OutputStoreException e)
        {
            // Failed, not retried: a full disk or an unreachable bucket may stay so for hours, and a terminal state the
            // client sees beats a silent wait. The store has removed the partial set.
            logger.LogError("Job {JobId} failed: {Message}", jobId, e.Message);
            Fail(jobId, e.Code, e.Message);
        }
        catch (Exception e)
        {
            var outOfMemory = OutOfMemory.IsOutOfMemory(e);
            if (outOfMemory) logger.LogError(e, "Job {JobId} failed: out of GPU memory even degraded and after its re-queue", jobId);
            else logger.LogError(e, "Job {JobId} failed", jobId);
            if (outOfMemory) Fail(jobId, JobErrorCodes.OutOfMemory, "The GPU ran out of memory.");
            else Fail(jobId, JobErrorCodes.Internal, e.Message);
        }
        metrics.GpuTime(job.UserId, clock.Elapsed);
        if (jobs.Find(jobId) is { IsFinished: true } done) metrics.JobRan(done.Status, clock.Elapsed);
    }

    private void Fail(string jobId, string code, string message) =>
        jobs.Update(jobId, j => j.Fail(new JobError { Code = code, Message = message }, Now));

    private DateTime Now => time.GetUtcNow().UtcDateTime;
}
