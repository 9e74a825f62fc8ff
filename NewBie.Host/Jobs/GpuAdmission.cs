using Microsoft.Extensions.Options;
using NewBie.Pipeline;

namespace NewBie.Host.Jobs;

/// <summary>
/// VRAM-aware admission (design.md §5): starts a job only when free GPU memory covers its estimate; otherwise the job
/// waits in the stage waiting_for_memory, polling every Jobs:MemoryPollInterval, until memory frees or it is
/// cancelled. A job too big for the GPU even when it is empty runs degraded (tiled VAE decode) from the start when
/// that fits, and fails out_of_memory at once otherwise.
/// </summary>
public sealed class GpuAdmission(JobStore jobs, MemoryAdmission admission, IOptions<JobsOptions> options, TimeProvider time, ILogger<GpuAdmission> logger)
{
    /// <summary>Whether the job would have to wait, and why: checked before the record says running.</summary>
    public string? MustWait(IImageGenerator engine, JobRecord job)
    {
        var (verdict, message) = admission.Check(engine.Model.Device, engine.EstimateMemory(job.Params.ToRequest() with { TiledDecode = job.Degraded }));
        return verdict == AdmissionVerdict.Wait ? message : null;
    }

    /// <summary>Returns the record to run, or null when the job finished here (never fits, or cancelled while waiting).</summary>
    public async Task<JobRecord?> AdmitAsync(IImageGenerator engine, JobRecord job, CancellationToken cancel)
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
                    job = jobs.Update(job.Id, j => j.Degrade(afterOutOfMemory: false)) ?? job;
                    (request, need) = (request with { TiledDecode = true }, tiled);
                    continue;
                }
            }
            if (verdict == AdmissionVerdict.Never)
            {
                logger.LogError("Job {JobId} can never fit: {Message}", job.Id, message);
                jobs.Update(job.Id, j => j.Fail(new JobError { Code = JobErrorCodes.OutOfMemory, Message = message }, Now));
                return null;
            }
            if (!waited) logger.LogWarning("Job {JobId} waits for GPU memory: {Message}", job.Id, message);
            waited = true;
            jobs.Update(job.Id, j => j.WaitForMemory(message));
            try
            {
                await Task.Delay(options.Value.MemoryPollInterval, time, cancel);
            }
            // Asked of the record, as in the run itself: a user's cancel also deletes the Hangfire job, whose watcher then
            // cancels Hangfire's token too, so that token cannot tell a cancel from a shutdown (which rethrows here).
            catch (OperationCanceledException) when (jobs.Find(job.Id)?.CancelRequested == true)
            {
                jobs.Update(job.Id, j => j.EndCanceled(Now));
                return null;
            }
        }
        admission.Started(need);
        if (!waited) return job;
        logger.LogInformation("Job {JobId} admitted: GPU memory is free now", job.Id);
        return jobs.Update(job.Id, j => j.Admit(Now)) ?? job;
    }

    private DateTime Now => time.GetUtcNow().UtcDateTime;
}
