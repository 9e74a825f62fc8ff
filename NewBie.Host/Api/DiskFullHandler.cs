using Microsoft.AspNetCore.Diagnostics;
using NewBie.Host.Outputs;

namespace NewBie.Host.Api;

/// <summary>
/// A request whose write met a full disk (LiteDB's app.db or hangfire.db, or any other file of the data folder) is
/// answered 507 insufficient_storage with Retry-After, like a submit refused by the free-space check, instead of 500:
/// the client learns that nothing was accepted and when to retry. LiteDB keeps answering the same error on that database
/// until the process restarts (it does not reopen a file after a failed write), so /readyz reports the database unwritable.
/// </summary>
public sealed class DiskFullHandler(ILogger<DiskFullHandler> logger) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (!IsDiskFull(exception)) return false;
        // One line without a stack trace: the cause is the volume, not the code, and a full disk repeats it per request.
        logger.LogError("{Method} {Path} answered 507: the disk is full ({Message})", httpContext.Request.Method, httpContext.Request.Path, exception.Message);
        httpContext.Response.StatusCode = StatusCodes.Status507InsufficientStorage;
        httpContext.Response.Headers.RetryAfter = JobSubmission.InsufficientStorageRetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await Problems.Create(StatusCodes.Status507InsufficientStorage, ProblemCodes.InsufficientStorage,
            "The server's disk is full; nothing was stored. Retry later.").ExecuteAsync(httpContext);
        return true;
    }

    /// <summary>The exception, or one it wraps, is an I/O error for want of space (ENOSPC, EDQUOT, ERROR_DISK_FULL).</summary>
    public static bool IsDiskFull(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is IOException io && FolderOutputBlobs.IsDiskFull(io)) return true;
        return false;
    }
}
