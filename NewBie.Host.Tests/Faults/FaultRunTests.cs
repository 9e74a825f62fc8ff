using NewBie.LoadBench;
using Xunit.Abstractions;

namespace NewBie.Host.Tests.Faults;

[LongRunning]
[CollectionDefinition(Name)]
public sealed class FaultRunCollection
{
    /// <summary>
    /// Real server processes that kill, fill and flood: one run at a time, beside the other test classes. They used to
    /// run alone after every other test (DisableParallelization), a minute on one of CI's two test threads with the other
    /// idle. Their deadlines are minutes long, so the other tests' load slows them without failing them; started first
    /// (<see cref="LongRunningAttribute"/>), they end before the shorter classes do.
    /// </summary>
    public const string Name = "fault runs";
}

/// <summary>
/// CI's short form of the fault runs of bench/NewBie.LoadBench (same code, fewer jobs): SIGKILL with restarts, a full
/// outputs volume, a full data volume (LiteDB's files), malformed requests — each against real child server processes serving the tiny model.
/// </summary>
[Collection(FaultRunCollection.Name)]
[Trait("Category", "Fault")]
public sealed class FaultRunTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("newbie-fault-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Sigkill_at_random_moments_with_restarts_loses_and_duplicates_nothing()
    {
        var report = await FaultRuns.KillRestartAsync(_dataDir, jobs: 30, kills: 4, seed: 5, new OutputWriter(output));

        output.WriteLine(report.ToString());
        Assert.True(report.Passed, report.ToString());
        Assert.Equal("0", report.Figures["lost"]);
        Assert.Equal("0", report.Figures["duplicated_outputs"]);
        Assert.Equal("30", report.Figures["succeeded"]);
        Assert.Equal("4", report.Figures["kills"]);
    }

    [PrivateTmpfsFact]
    public async Task Full_outputs_volume_answers_507_corrupts_nothing_and_recovers_when_space_returns()
    {
        var report = await FaultRuns.DiskFullAsync(_dataDir, new OutputWriter(output), goodJobs: 2);

        output.WriteLine(report.ToString());
        Assert.Null(report.Skipped);
        Assert.True(report.Passed, report.ToString());
        Assert.Equal("failed (insufficient_storage)", report.Figures["job_meeting_full_disk"]);
        Assert.Equal("yes", report.Figures["recovered"]);
    }

    [PrivateTmpfsFact]
    public async Task Full_data_volume_answers_507_on_every_submit_route_loses_no_job_and_the_databases_open_whole_after_a_restart()
    {
        var report = await FaultRuns.DataVolumeFullAsync(_dataDir, new OutputWriter(output), queuedJobs: 2);

        output.WriteLine(report.ToString());
        Assert.Null(report.Skipped);
        Assert.True(report.Passed, report.ToString());
        Assert.Equal("9/9", report.Figures["refused_507"]);
        Assert.StartsWith("succeeded", report.Figures["job_running_when_full"]);
        Assert.Equal("succeeded×2", report.Figures["queued_jobs_after_restart"]);
        Assert.Equal("yes", report.Figures["recovered"]);
    }

    [Fact]
    public async Task Five_hundred_malformed_requests_are_all_4xx_and_change_nothing()
    {
        var report = await FaultRuns.MalformedAsync(_dataDir, count: 500, new OutputWriter(output));

        output.WriteLine(report.ToString());
        Assert.True(report.Passed, report.ToString());
        Assert.Equal("500", report.Figures["requests"]);
        Assert.Equal("yes", report.Figures["store_unchanged"]);
    }

    [Fact]
    public async Task Fuzz_run_generated_from_the_openapi_document_gets_no_5xx_changes_nothing_and_leaves_the_server_healthy()
    {
        var report = await FaultRuns.OpenApiFuzzAsync(_dataDir, new OutputWriter(output));

        output.WriteLine(report.ToString());
        Assert.True(report.Passed, report.ToString());
        Assert.Equal("0", report.Figures["5xx_or_dropped"]);
        Assert.Equal("yes", report.Figures["store_unchanged"]);
    }

    private sealed class OutputWriter(ITestOutputHelper output) : StringWriter
    {
        public override void WriteLine(string? value) => output.WriteLine(value ?? "");
    }
}

/// <summary>
/// Needs a tmpfs in a private mount namespace (root, unshare, mount). Without one the test skips, unless
/// NEWBIE_REQUIRE_FAULTS is set: then it runs and fails on the missing capability.
/// </summary>
public sealed class PrivateTmpfsFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> WhyNot = new(() => FaultRuns.WhyNoPrivateTmpfsAsync().GetAwaiter().GetResult());

    public PrivateTmpfsFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("NEWBIE_REQUIRE_FAULTS") is not { Length: > 0 } && WhyNot.Value is { } why)
            Skip = $"cannot mount a private tmpfs ({why}); set NEWBIE_REQUIRE_FAULTS=1 to fail instead";
    }
}
