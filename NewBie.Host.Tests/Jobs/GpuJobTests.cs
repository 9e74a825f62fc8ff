using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NewBie.Host.Jobs;

namespace NewBie.Host.Tests.Jobs;

public sealed class GpuJobTests
{
    private sealed class CollectingLogger<T> : ILogger<T>
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries) Entries.Add((logLevel, formatter(state, exception)));
        }
    }

    [Fact]
    public async Task A_gpu_job_whose_record_was_never_stored_is_dropped_with_a_warning_and_not_run()
    {
        var logger = new CollectingLogger<GpuJob>();
        using var app = new NewBieApplication(services: s => s.AddSingleton<ILogger<GpuJob>>(logger));
        using var scope = app.Services.CreateScope();

        await scope.ServiceProvider.GetRequiredService<GpuJob>().RunAsync("j_never_stored", CancellationToken.None);

        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("j_never_stored has no record", warning.Message);
        Assert.Equal(0, app.Engine.Runs);
    }
}
