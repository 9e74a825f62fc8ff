using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using NewBie.Host.Accounts;
using NewBie.Host.Api;
using NewBie.Host.Jobs;

namespace NewBie.Host.Integrations;

public sealed record WebhookSecretDto(string Secret);

public static class WebhooksSetup
{
    public const string Queue = "default";

    public static IHostApplicationBuilder AddWebhooks(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<WebhooksOptions>().BindConfiguration(WebhooksOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<WebhookClient>();
        builder.Services.AddTransient<WebhookDelivery>();
        builder.Services.AddHostedService<WebhookDispatcher>();
        return builder;
    }

    public static RouteGroupBuilder MapWebhooks(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/v1/webhook-secret").WithTags("Webhooks").RequireAuthorization(Policies.User);
        group.MapPost("/", (CurrentUser user, IWebhookSecretStore secrets) => TypedResults.Ok(new WebhookSecretDto(secrets.Rotate(user.Id))))
            .WithSummary("Create or rotate the caller's webhook signing secret (shown once)")
            .WithDescription("Returns a Standard Webhooks secret (whsec_…). Deliveries from now on are signed with it; the previous one stops working.")
            .Produces<WebhookSecretDto>().ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status401Unauthorized);
        return group;
    }
}

/// <summary>Queues a webhook delivery on Hangfire's "default" queue when a job that has one finishes, however it finished.</summary>
public sealed class WebhookDispatcher(JobStore jobs, IBackgroundJobClientV2 hangfire, Hangfire.JobStorage storage, ILogger<WebhookDispatcher> logger) : IHostedService
{
    private static readonly HashSet<string> FinalStates = [DeletedState.StateName, SucceededState.StateName, FailedState.StateName];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        jobs.Finished += OnFinished;
        // A delivery whose Hangfire job never got created, or is gone (a crash, a storage that forgot it), is queued again.
        using var connection = storage.GetConnection();
        foreach (var status in new[] { JobStatus.Succeeded, JobStatus.Failed, JobStatus.Canceled, JobStatus.Expired })
            foreach (var job in jobs.WithStatus(status).Where(j => j.Webhook is { State: WebhookState.Pending or WebhookState.Delivering }))
            {
                if (job.Webhook!.DeliveryJobId is { } id && connection.GetJobData(id) is { } data && !FinalStates.Contains(data.State)) continue;
                Queue(job.Id);
            }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        jobs.Finished -= OnFinished;
        return Task.CompletedTask;
    }

    private void OnFinished(JobRecord job)
    {
        if (job.Webhook is { State: WebhookState.Pending }) Queue(job.Id);
    }

    private void Queue(string jobId)
    {
        var deliveryId = hangfire.Create(Job.FromExpression<WebhookDelivery>(d => d.DeliverAsync(jobId, CancellationToken.None), WebhooksSetup.Queue), new EnqueuedState(WebhooksSetup.Queue));
        jobs.Update(jobId, j =>
        {
            if (j.Webhook is not { } w) return false;
            w.DeliveryJobId = deliveryId;
            return true;
        });
        logger.LogDebug("Webhook of job {JobId} queued as Hangfire job {DeliveryId}", jobId, deliveryId);
    }
}
