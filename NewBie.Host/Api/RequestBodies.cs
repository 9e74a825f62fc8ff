using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using NewBie.Host.Jobs;

namespace NewBie.Host.Api;

/// <summary>
/// Request bodies on every route: a size limit chosen before anything reads the body (anonymous callers get the
/// smallest), and bodies that arrive too slowly, too large or cut off answered as the client's fault (408, 413, 400),
/// logged as one Warning line without a stack trace.
/// </summary>
public static class RequestBodies
{
    /// <summary>After authentication (the limit depends on who is calling), before any endpoint reads a body.</summary>
    public static WebApplication UseRequestBodyLimits(this WebApplication app)
    {
        var limits = app.Services.GetRequiredService<IOptions<LimitsOptions>>();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RequestBodies).FullName!);
        app.Use(async (http, next) =>
        {
            var anonymous = http.User.Identity?.IsAuthenticated != true;
            var max = anonymous ? limits.Value.MaxAnonymousBodyBytes : limits.Value.MaxBodyBytes;
            // A declared length above the limit is refused at once: nothing is read, parsed or buffered.
            if (http.Request.ContentLength > max)
            {
                // The connection closes after the answer: the server will not read (or drain) the rest.
                http.Response.Headers.Connection = "close";
                await TooLarge(max).ExecuteAsync(http);
                return;
            }
            // An anonymous body without a declared length (chunked) is cut off by the server, connection and all, when it
            // grows past the limit. A caller with a key is answered 413 by the route that reads its body (submits read
            // at most Limits:MaxBodyBytes) and the rest is drained within Kestrel's own limit, so the client sees the 413.
            if (anonymous && http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = max;
            try
            {
                await next(http);
            }
            catch (BadHttpRequestException e) when (!http.Response.HasStarted)
            {
                // Kestrel's verdict on the body (too slow: 408, too large: 413, cut off: 400) is the client's doing.
                logger.LogWarning("{Method} {Path}: the request body was refused with {StatusCode}: {Reason}",
                    http.Request.Method, http.Request.Path.Value, e.StatusCode, e.Message);
                await Problem(e.StatusCode, max, e.Message).ExecuteAsync(http);
            }
            catch (Exception e) when (http.RequestAborted.IsCancellationRequested && e is OperationCanceledException or IOException or BadHttpRequestException)
            {
                // The client went away in the middle of its body: nobody is left to answer.
                logger.LogWarning("{Method} {Path}: the client closed the connection before its request was read ({Reason})",
                    http.Request.Method, http.Request.Path.Value, e.Message);
            }
        });
        return app;
    }

    private static IResult TooLarge(long max) =>
        Problems.Create(StatusCodes.Status413PayloadTooLarge, ProblemCodes.PayloadTooLarge, $"The body is larger than {max} bytes.");

    private static IResult Problem(int status, long max, string reason) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => TooLarge(max),
        StatusCodes.Status408RequestTimeout => Problems.Create(status, ProblemCodes.RequestTimeout, "The request body arrived too slowly."),
        _ => Problems.Create(StatusCodes.Status400BadRequest, ProblemCodes.BadRequest, $"The request could not be read: {reason}"),
    };
}
