using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using NewBie.Host.Storage;
using NewBie.Host.Telemetry;

namespace NewBie.Host.Outputs;

public static class OutputsSetup
{
    public static IHostApplicationBuilder AddOutputs(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<OutputsOptions>().BindConfiguration(OutputsOptions.Section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<OutputsOptions>, OutputsOptionsValidator>();
        builder.Services.AddSingleton<IOutputBlobs>(services =>
        {
            var options = services.GetRequiredService<IOptions<OutputsOptions>>().Value;
            return options.Provider == OutputsOptions.S3Provider
                ? new S3OutputBlobs(options.S3)
                : new FolderOutputBlobs(services.GetRequiredService<DataDirectory>().OutputsPath);
        });
        builder.Services.AddSingleton<OutputStore>();
        builder.Services.AddExceptionHandler<OutputStoreExceptionHandler>();
        // A folder is covered by the storage check's write probe and free-space floor; a bucket has its own check.
        builder.Services.AddHealthChecks().AddCheck<OutputsReadiness>("outputs", tags: [HealthEndpoints.ReadyTag]);
        return builder;
    }

}

/// <summary>Settings that cannot work stop the start, naming every one of them (a bucket that does not answer only shows in /readyz).</summary>
public sealed class OutputsOptionsValidator : IValidateOptions<OutputsOptions>
{
    public ValidateOptionsResult Validate(string? name, OutputsOptions options)
    {
        var problems = new List<string>();
        if (options.Provider is not (OutputsOptions.FolderProvider or OutputsOptions.S3Provider))
            problems.Add($"Outputs:Provider is '{options.Provider}'; it must be folder or s3");
        if (options.UsageRefresh <= TimeSpan.Zero) problems.Add("Outputs:UsageRefresh must be more than 0");
        if (options.Provider == OutputsOptions.S3Provider) problems.AddRange(S3Problems(options.S3));
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }

    private static List<string> S3Problems(S3OutputsOptions s3)
    {
        var problems = new List<string>();
        if (!Uri.TryCreate(s3.ServiceUrl, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            problems.Add("Outputs:Provider is s3 but Outputs:S3:ServiceUrl is not an absolute http(s) URL");
        if (string.IsNullOrWhiteSpace(s3.Bucket)) problems.Add("Outputs:Provider is s3 but Outputs:S3:Bucket is missing");
        if (string.IsNullOrWhiteSpace(s3.Region)) problems.Add("Outputs:Provider is s3 but Outputs:S3:Region is empty");
        if (string.IsNullOrWhiteSpace(s3.AccessKey)) problems.Add("Outputs:Provider is s3 but Outputs:S3:AccessKey is missing");
        if (string.IsNullOrWhiteSpace(s3.SecretKey)) problems.Add("Outputs:Provider is s3 but Outputs:S3:SecretKey is missing");
        return problems;
    }
}

/// <summary>
/// A request that needs the output store while it fails (a submit's storage-cap count, an image, a delete) is answered
/// 503 outputs_unavailable with Retry-After, in one place instead of a catch in every route.
/// </summary>
public sealed class OutputStoreExceptionHandler : Microsoft.AspNetCore.Diagnostics.IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not OutputStoreException failure || httpContext.Response.HasStarted) return false;
        await Api.Problems.OutputsUnavailable(failure).ExecuteAsync(httpContext);
        return true;
    }
}

/// <summary>Ready while the outputs bucket answers to the configured credentials; always ready for a folder (the storage check covers it).</summary>
public sealed class OutputsReadiness(IOutputBlobs blobs) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (blobs is not S3OutputBlobs bucket) return HealthCheckResult.Healthy($"outputs in the folder {blobs.Location}");
        return await bucket.ProblemAsync(cancellationToken) is { } problem
            ? HealthCheckResult.Unhealthy(problem)
            : HealthCheckResult.Healthy($"outputs in the {blobs.Location}");
    }
}
