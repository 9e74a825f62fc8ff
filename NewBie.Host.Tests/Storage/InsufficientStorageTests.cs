using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using NewBie.Host.Jobs;
using NewBie.Host.Outputs;
using NewBie.Host.Storage;

namespace NewBie.Host.Tests.Storage;

public sealed class InsufficientStorageTests
{
    private const long Floor = 100 * 1024 * 1024;
    private static readonly object Small = new { prompt = "x", width = 256, height = 256, steps = 2 };

    /// <summary>Free bytes per folder, settable by the test; unknown folders have plenty.</summary>
    private sealed class FakeProbe : IFreeSpaceProbe
    {
        public Func<string, long> Free { get; set; } = _ => long.MaxValue / 2;

        public int Calls;

        public long AvailableBytes(string folder)
        {
            Interlocked.Increment(ref Calls);
            return Free(folder);
        }
    }

    private static NewBieApplication App(FakeProbe probe, long floor = Floor) =>
        new(new() { ["Storage:MinFreeBytes"] = floor.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            services: s => s.AddSingleton<IFreeSpaceProbe>(probe));

    [Fact]
    public async Task Submit_is_refused_507_insufficient_storage_with_retry_after_when_the_outputs_volume_is_below_the_floor()
    {
        var probe = new FakeProbe();
        using var app = App(probe);
        probe.Free = folder => folder == app.Service<DataDirectory>().OutputsPath ? Floor - 1 : long.MaxValue / 2;
        var client = app.ClientFor();

        using var response = await client.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
        var problem = await response.ProblemAsync();
        Assert.Equal("insufficient_storage", problem.Str("code"));
        Assert.Contains("low disk space", problem.Str("detail"));
        Assert.Equal(TimeSpan.FromSeconds(60), response.Headers.RetryAfter?.Delta);
        Assert.Empty(app.Service<JobStore>().List(null, null, null, 10));
    }

    [Fact]
    public async Task Seed_and_openai_submits_are_refused_507_too_and_store_nothing()
    {
        var probe = new FakeProbe { Free = _ => 0 };
        using var app = App(probe);
        var client = app.ClientFor();

        using var seed = await client.PostRawAsync("/generate", Small);
        using var openAi = await client.PostRawAsync("/v1/images/generations", new { prompt = "x", size = "256x256", steps = 2 });

        Assert.Equal(HttpStatusCode.InsufficientStorage, seed.StatusCode);
        Assert.Equal("insufficient_storage", (await seed.ProblemAsync()).Str("code"));
        Assert.Equal(HttpStatusCode.InsufficientStorage, openAi.StatusCode);
        Assert.Contains("insufficient_storage", await openAi.Content.ReadAsStringAsync());
        Assert.Empty(app.Service<JobStore>().List(null, null, null, 10));
        Assert.Equal(0, app.Engine.Runs);
    }

    [Fact]
    public async Task Data_volume_below_the_floor_refuses_new_work_as_well()
    {
        var probe = new FakeProbe();
        using var app = App(probe);
        probe.Free = folder => folder == app.Service<DataDirectory>().Root ? 10 : long.MaxValue / 2;

        using var response = await app.ClientFor().PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
    }

    [Fact]
    public async Task Bad_input_is_still_400_while_the_disk_is_low()
    {
        using var app = App(new FakeProbe { Free = _ => 0 });

        using var response = await app.ClientFor().PostRawAsync("/v1/jobs", new { prompt = "x", width = 7 });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_says_low_disk_space_while_below_the_floor()
    {
        using var app = App(new FakeProbe { Free = _ => Floor / 2 });

        using var ready = await app.CreateClient().GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        var body = await ready.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("failed", body.GetProperty("checks").GetProperty("storage").Str("status"));
        Assert.StartsWith("storage: low disk space", body.Str("problem"));
    }

    [Fact]
    public async Task Submits_are_accepted_again_once_space_returns_and_the_check_is_cached_in_between()
    {
        var probe = new FakeProbe { Free = _ => 0 };
        using var app = App(probe);
        var client = app.ClientFor();
        using (var refused = await client.PostRawAsync("/v1/jobs", Small)) Assert.Equal(HttpStatusCode.InsufficientStorage, refused.StatusCode);
        var calls = probe.Calls;

        probe.Free = _ => Floor * 10;
        using (var cached = await client.PostRawAsync("/v1/jobs", Small)) Assert.Equal(HttpStatusCode.InsufficientStorage, cached.StatusCode);
        Assert.Equal(calls, probe.Calls);
        app.Time.Advance(StorageSpace.CacheFor);

        var id = (await client.SubmitAsync(Small)).Str("id");
        await client.WaitForStatusAsync(id, "succeeded");
    }

    [Fact]
    public async Task Min_free_bytes_zero_turns_the_check_off()
    {
        var probe = new FakeProbe { Free = _ => 0 };
        using var app = App(probe, floor: 0);
        var client = app.ClientFor();

        var id = (await client.SubmitAsync(Small)).Str("id");

        await client.WaitForStatusAsync(id, "succeeded");
        Assert.Equal(0, probe.Calls);
    }

    [Theory]
    [InlineData(28, true)]   // ENOSPC
    [InlineData(122, true)]  // EDQUOT
    [InlineData(112, true)]  // ERROR_DISK_FULL
    [InlineData(13, false)]  // EACCES
    [InlineData(2, false)]   // ENOENT
    public void Disk_full_is_told_apart_from_other_write_errors(int errno, bool full) =>
        Assert.Equal(full, FolderOutputBlobs.IsDiskFull(new IOException("x", errno)));

    /// <summary>The Hangfire job factory whose storage is full: the submit's Hangfire jobs cannot be written.</summary>
    private sealed class FullDiskJobFactory : Hangfire.Client.IBackgroundJobFactory
    {
        public Hangfire.States.IStateMachine StateMachine => throw new NotSupportedException();

        public Hangfire.BackgroundJob Create(Hangfire.Client.CreateContext context) => throw new IOException("No space left on device : 'hangfire-log.db'", 28);
    }

    [Fact]
    public async Task A_submit_whose_write_meets_a_full_disk_answers_507_and_leaves_no_record_and_no_charge()
    {
        // The free-space check off, as when the disk fills between the check and the write.
        using var app = new NewBieApplication(new() { ["Storage:MinFreeBytes"] = "0" },
            services: s => s.AddSingleton<Hangfire.Client.IBackgroundJobFactory>(new FullDiskJobFactory()));
        var client = app.ClientFor();

        using var response = await client.PostRawAsync("/v1/jobs", Small);

        Assert.Equal(HttpStatusCode.InsufficientStorage, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("insufficient_storage", (await response.ProblemAsync()).Str("code"));
        Assert.Equal(TimeSpan.FromSeconds(60), response.Headers.RetryAfter?.Delta);
        Assert.Empty(app.Service<JobStore>().List(null, null, null, 10));
        Assert.Equal(0, app.Service<JobStore>().CountQueued());
        Assert.Equal(0, app.Service<NewBie.Host.Accounts.IUsageStore>().Used("local", app.Time.GetUtcNow().UtcDateTime.Date));
    }
}
