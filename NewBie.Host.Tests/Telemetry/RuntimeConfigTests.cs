using System.Text.Json;

namespace NewBie.Host.Tests.Telemetry;

public sealed class RuntimeConfigTests
{
    /// <summary>The server's runtimeconfig.json as built (the test project copies the referenced server's beside its own).</summary>
    private static JsonElement ServerConfigProperties()
    {
        using var file = File.OpenRead(Path.Combine(AppContext.BaseDirectory, "NewBie.runtimeconfig.json"));
        return JsonDocument.Parse(file).RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    [Fact]
    public void The_server_starts_with_a_thread_pool_floor_that_a_burst_of_blocking_submits_does_not_wait_on()
    {
        // With the default floor (one thread per core) 20 simultaneous submits waited seconds for the pool to grow.
        var minThreads = ServerConfigProperties().GetProperty("System.Threading.ThreadPool.MinThreads").GetInt32();

        Assert.True(minThreads >= 32, $"System.Threading.ThreadPool.MinThreads is {minThreads}");
    }

    [Fact]
    public void The_tests_run_the_server_with_the_same_thread_pool_floor_as_the_server()
    {
        ThreadPool.GetMinThreads(out var workers, out _);

        Assert.Equal(ServerConfigProperties().GetProperty("System.Threading.ThreadPool.MinThreads").GetInt32(), workers);
    }
}
