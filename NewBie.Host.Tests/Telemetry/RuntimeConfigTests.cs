using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests.Telemetry;

public sealed class RuntimeConfigTests
{
    [Fact]
    public void The_embedded_server_keeps_the_default_thread_pool_floor()
    {
        // Measured: a floor of 16 or 64 threads cost the embedded server's status reads rate and doubled their p99.
        using var file = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "NewBie.runtimeconfig.json"));
        var properties = JsonDocument.Parse(file).RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.False(properties.TryGetProperty("System.Threading.ThreadPool.MinThreads", out _));
    }

    [Fact]
    public void A_server_on_postgresql_raises_the_thread_pool_floor_that_its_blocking_round_trips_need()
    {
        // The test process's own floor (TestThreadPool) is below it, so only AddStorage can have raised it.
        Assert.True(TestThreadPool.MinWorkerThreads < StorageSetup.PostgresMinWorkerThreads);
        var builder = WebApplication.CreateBuilder();
        builder.Configuration["Storage:Provider"] = "postgres";
        builder.Configuration["ConnectionStrings:Postgres"] = "Host=127.0.0.1;Database=none";

        builder.AddStorage();

        ThreadPool.GetMinThreads(out var workers, out _);
        Assert.True(workers >= StorageSetup.PostgresMinWorkerThreads, $"the floor is {workers} threads");
    }
}
