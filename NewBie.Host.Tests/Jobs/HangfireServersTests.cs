using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using NewBie.Host.Jobs;

namespace NewBie.Host.Tests.Jobs;

public sealed class HangfireServersTests
{
    [Fact]
    public async Task A_second_concurrent_stop_returns_only_once_the_running_job_has_left_its_worker()
    {
        using var app = new NewBieApplication();
        var client = app.ClientFor();
        app.Engine.Hold();
        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 4 })).Str("id");
        await client.WaitForStatusAsync(id, "running");
        var running = app.Service<RunningJobs>();
        Assert.Contains(id, running.Ids);
        var servers = app.Services.GetServices<IHostedService>().OfType<HangfireServers>().Single();

        // As WebApplicationFactory's disposal and an explicit stop do: two stops at once. Returning from either lets
        // the host dispose the storage, so neither may return while a worker still runs the job.
        var first = servers.StopAsync(CancellationToken.None);
        var second = servers.StopAsync(CancellationToken.None);
        await second.WaitAsync(TimeSpan.FromSeconds(20));

        Assert.DoesNotContain(id, running.Ids);
        await first.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
