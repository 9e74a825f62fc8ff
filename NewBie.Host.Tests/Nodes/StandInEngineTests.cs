using System.Diagnostics;
using System.Net;

namespace NewBie.Host.Tests.Nodes;

/// <summary>The bench's stand-in engine (Engine:StandIn:ServiceTime) through the real job path: admission, progress, outputs.</summary>
public sealed class StandInEngineTests
{
    [Fact]
    public async Task Stand_in_takes_its_service_time_and_writes_real_pngs_of_the_requested_size()
    {
        using var app = new NewBieApplication(new() { ["Engine:StandIn:ServiceTime"] = "00:00:00.500" }, scriptedEngine: false);
        var client = app.ClientFor();
        var clock = Stopwatch.StartNew();

        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 320, height = 256, steps = 4, count = 2, seed = 7 })).Str("id");
        var job = await client.WaitForStatusAsync(id, "succeeded");

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(500), $"done after {clock.Elapsed}");
        Assert.Equal(8, job.GetProperty("progress").GetProperty("step").GetInt32());
        Assert.Equal(2, job.GetProperty("images").GetArrayLength());
        for (var n = 0; n < 2; n++)
        {
            var png = await client.GetByteArrayAsync($"/v1/jobs/{id}/images/{n}");
            var (width, height, rgb) = PngDecoder.Decode(png);
            Assert.Equal((320, 256), (width, height));
            Assert.Equal((byte)(7 + n), rgb[2]);
        }
        var ready = await app.AdminClient().GetStringAsync("/readyz");
        Assert.Contains("\"model\":\"stand-in\"", ready);
    }

    [Fact]
    public async Task Stand_in_run_stops_at_once_when_canceled()
    {
        using var app = new NewBieApplication(new() { ["Engine:StandIn:ServiceTime"] = "00:10:00" }, scriptedEngine: false);
        var client = app.ClientFor();
        var id = (await client.SubmitAsync(new { prompt = "1girl", width = 256, height = 256, steps = 2 })).Str("id");
        await client.WaitForStatusAsync(id, "running");

        using var cancel = await client.DeleteAsync($"/v1/jobs/{id}");

        Assert.True(cancel.IsSuccessStatusCode, $"cancel answered {(int)cancel.StatusCode}");
        var job = await client.WaitForStatusAsync(id, "canceled");
        Assert.Equal(0, job.GetProperty("images").GetArrayLength());
        Assert.NotEqual(HttpStatusCode.OK, (await client.GetAsync($"/v1/jobs/{id}/images/0")).StatusCode);
    }
}
