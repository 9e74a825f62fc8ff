using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;
using Microsoft.Extensions.Options;
using Npgsql;
using NewBie.Host.HangfireStorage;
using NewBie.Host.HangfireStorage.Postgres;
using NewBie.Host.Storage;

namespace NewBie.Host.Jobs;

public static class JobsSetup
{
    /// <summary>
    /// Jobs on Hangfire, wired per application instead of through Hangfire's static GlobalConfiguration, so that
    /// nothing (storage, filters) leaks between two servers in one process.
    /// </summary>
    public static IHostApplicationBuilder AddJobs(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<JobsOptions>().BindConfiguration(JobsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<JobStore>();
        services.AddSingleton<RunningJobs>();
        services.AddSingleton<RunTimeStats>();
        services.AddSingleton<QueueView>();
        services.AddSingleton<JobOutcomes>();
        services.AddSingleton<JobEventHub>();
        services.AddSingleton<JobQueue>();
        services.AddSingleton<MemoryAdmission>();
        services.AddTransient<JobMaintenance>();
        services.AddTransient<GpuAdmission>();
        services.AddTransient<OutOfMemoryRecovery>();
        services.AddTransient<GpuJob>();

        // The one place the Hangfire storage is chosen. Embedded: our LiteDB storage in the data folder, whose dequeue is
        // the fair order. Several nodes (Storage:Provider=postgres): Hangfire.PostgreSql in the shared database with the
        // fair gpu queue across nodes; a dead node's job is claimed again after Jobs:NodeTimeout. The container disposes
        // either after the hosted Hangfire servers have stopped.
        if (StorageOptions.UsesPostgres(builder.Configuration))
        {
            // The data source is the one StorageSetup registers (one connection pool per process).
            services.AddSingleton(sp => new PostgresJobStorage(sp.GetRequiredService<NpgsqlDataSource>(),
                sp.GetRequiredService<IConfiguration>().GetConnectionString("Postgres")!,
                new PostgresQueueOptions { FairQueues = [JobQueue.GpuQueue], InvisibilityTimeout = sp.GetRequiredService<IOptions<JobsOptions>>().Value.NodeTimeout },
                sp.GetRequiredService<ILogger<PostgresFairQueue>>()));
            services.AddSingleton<Hangfire.JobStorage>(sp => sp.GetRequiredService<PostgresJobStorage>().Storage);
            services.AddSingleton<IFairQueue>(sp => sp.GetRequiredService<PostgresJobStorage>().FairQueue);
        }
        else
        {
            services.AddSingleton(sp => new LiteDbStorage(sp.GetRequiredService<DataDirectory>().HangfireDatabasePath,
                new LiteDbStorageOptions { FairQueues = [JobQueue.GpuQueue] }));
            services.AddSingleton<Hangfire.JobStorage>(sp => sp.GetRequiredService<LiteDbStorage>());
            services.AddSingleton<IFairQueue>(sp => sp.GetRequiredService<LiteDbStorage>());
        }

        services.AddSingleton<IJobFilterProvider>(sp =>
        {
            var filters = new JobFilterCollection
            {
                // No automatic retries: a GPU job that threw has a reason (bad input, OOM) that a retry repeats.
                new AutomaticRetryAttribute { Attempts = 0 },
                new JobAttemptFilter(sp.GetRequiredService<JobStore>(), sp.GetRequiredService<IOptions<JobsOptions>>(), sp.GetRequiredService<TimeProvider>()),
            };
            return new JobFilterProviderCollection(filters, new JobFilterAttributeFilterProvider());
        });
        // A new job and its first state in one commit where the storage can (ours): half the commits of a submit's Hangfire job.
        services.AddSingleton<IBackgroundJobFactory>(sp => new OneCommitJobFactory(sp.GetRequiredService<IJobFilterProvider>()));
        services.AddSingleton<IBackgroundJobStateChanger>(sp => new BackgroundJobStateChanger(sp.GetRequiredService<IJobFilterProvider>()));
        services.AddSingleton<IBackgroundJobClientV2>(sp => new BackgroundJobClient(
            sp.GetRequiredService<Hangfire.JobStorage>(), sp.GetRequiredService<IBackgroundJobFactory>(), sp.GetRequiredService<IBackgroundJobStateChanger>()));
        services.AddSingleton<IRecurringJobManager>(sp => new RecurringJobManager(
            sp.GetRequiredService<Hangfire.JobStorage>(), sp.GetRequiredService<IBackgroundJobFactory>()));
        services.AddHostedService<HangfireServers>();
        return builder;
    }
}

/// <summary>
/// Starts the two Hangfire servers: "gpu" with exactly one worker (one generation at a time on the one GPU) and
/// "default" for clean-up; before them, reconciles job records with the storage and registers the recurring jobs.
/// </summary>
public sealed class HangfireServers(IServiceProvider services) : IHostedService
{
    private BackgroundJobServer[] _servers = [];
    private readonly Lock _stopGate = new();
    private Task? _stopped;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // Subscribed to job endings before any job can end.
        services.GetRequiredService<JobOutcomes>();
        services.GetRequiredService<JobQueue>().Reconcile();
        var recurring = services.GetRequiredService<IRecurringJobManager>();
        recurring.AddOrUpdate("expire-queued-jobs", Job.FromExpression<JobMaintenance>(m => m.ExpireStale()), Cron.Minutely(), new RecurringJobOptions());
        recurring.AddOrUpdate("delete-old-results", Job.FromExpression<JobMaintenance>(m => m.DeleteOldResultsAsync()), Cron.Hourly(), new RecurringJobOptions());

        // Named after the node, so that the dashboard's servers page and the node list (admin, /v1/admin/nodes) agree.
        var node = services.GetRequiredService<Nodes.NodeIdentity>().Name;
        Volatile.Write(ref _servers,
        [
            Start(new BackgroundJobServerOptions { ServerName = $"{node}:gpu", Queues = [JobQueue.GpuQueue], WorkerCount = 1 }),
            Start(new BackgroundJobServerOptions { ServerName = $"{node}:default", Queues = ["default"], WorkerCount = 2 }),
        ]);
        return Task.CompletedTask;
    }

    // The host may stop twice, even concurrently (WebApplicationFactory disposal while an explicit stop runs): exactly
    // one call stops the servers, and both wait for that stop. A call that returned at once would let the host dispose
    // the services, the storage among them, under a worker still running a job: the job then failed on the disposed
    // database and its worker held the other stop for the whole ShutdownTimeout.
    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_stopGate) _stopped ??= StopServersAsync(cancellationToken);
        return _stopped.WaitAsync(cancellationToken);
    }

    private async Task StopServersAsync(CancellationToken cancellationToken)
    {
        var servers = Interlocked.Exchange(ref _servers, []);
        foreach (var server in servers) server.SendStop();
        await Task.WhenAll(servers.Select(s => s.WaitForShutdownAsync(cancellationToken)));
        foreach (var server in servers) server.Dispose();
    }

    private BackgroundJobServer Start(BackgroundJobServerOptions options)
    {
        // Cancel checks every second (default 5 s) as a backstop; the API signals running jobs directly.
        options.CancellationCheckInterval = TimeSpan.FromSeconds(1);
        options.ShutdownTimeout = TimeSpan.FromSeconds(10);
        options.FilterProvider = services.GetRequiredService<IJobFilterProvider>();
        options.Activator = new AspNetCoreJobActivator(services.GetRequiredService<IServiceScopeFactory>());
        return new BackgroundJobServer(options, services.GetRequiredService<Hangfire.JobStorage>(), []);
    }
}
