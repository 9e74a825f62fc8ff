using System.Net;
using System.Net.Sockets;
using System.Text;
using NewBie.LoadBench;

namespace NewBie.Host.Tests.Api;

/// <summary>
/// The load bench's raw-socket event stream reader (bench/NewBie.LoadBench/EventStreamReader.cs): the 1,000-stream
/// figure "every stream saw every step" is only as true as its counting, so it is checked here against scripted
/// responses sent in fragments that split headers, frames and their blank lines.
/// </summary>
public sealed class EventStreamReaderTests
{
    private const string Headers = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

    private static string Step(int n, int of = 3) => $"event: step\ndata: {{\"step\":{n},\"steps\":{of}}}\n\n";

    // Larger than the reader's first buffer: the done event carries the whole job.
    private static readonly string Done = $"event: done\ndata: {{\"id\":\"j\",\"prompt\":\"{new string('x', 20_000)}\"}}\n\n";

    // The server announces step 0 as the job starts (its record's step before the first one ends): not a step of
    // 1..steps, and not out of order.
    [Fact]
    public async Task Counts_every_step_once_across_split_frames_and_a_done_event_larger_than_its_buffer()
    {
        var body = Headers + "event: position\ndata: {\"queue_position\":1}\n\n" + "event: stage\ndata: {\"stage\":\"encoding\"}\n\n" +
            Step(0) + Step(1) + ": keep-alive\n\n" + Step(2) + Step(3) + "event: stage\ndata: {\"stage\":\"decoding\"}\n\n" + Done;

        var read = await ReadAsync(body, fragment: 7);

        Assert.Equal(new StreamRead(Opened: true, Steps: 3, InOrder: true, Done: true), read);
        Assert.True(read.SawEveryStep(3));
    }

    [Fact]
    public async Task A_missing_step_a_repeated_step_or_a_stream_cut_before_done_is_not_every_step()
    {
        var missing = await ReadAsync(Headers + Step(1) + Step(3) + Done, fragment: 5);
        Assert.Equal(2, missing.Steps);
        Assert.False(missing.SawEveryStep(3));

        var repeated = await ReadAsync(Headers + Step(1) + Step(2) + Step(2) + Step(3) + Done, fragment: 64);
        Assert.Equal(3, repeated.Steps);
        Assert.False(repeated.InOrder);
        Assert.False(repeated.SawEveryStep(3));

        var cut = await ReadAsync(Headers + Step(1) + Step(2) + Step(3), fragment: 64);
        Assert.Equal(new StreamRead(Opened: true, Steps: 3, InOrder: true, Done: false), cut);
        Assert.False(cut.SawEveryStep(3));
    }

    [Fact]
    public async Task A_refused_stream_is_counted_as_not_opened_and_still_signals_its_answer()
    {
        var read = await ReadAsync("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 2\r\n\r\n{}", fragment: 64);

        Assert.False(read.Opened);
        Assert.False(read.SawEveryStep(3));
    }

    /// <summary>Serves <paramref name="response"/> to one reader in pieces of <paramref name="fragment"/> bytes, each sent on its own, then closes.</summary>
    private static async Task<StreamRead> ReadAsync(string response, int fragment)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var opened = new CountdownEvent(1);
        var reader = EventStreamReader.ReadAsync($"http://127.0.0.1:{port}", "nb_key", "j", steps: 3, opened);
        using (var client = await listener.AcceptTcpClientAsync())
        {
            client.NoDelay = true;
            var stream = client.GetStream();
            var request = new StringBuilder();
            var buffer = new byte[1024];
            while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                request.Append(Encoding.ASCII.GetString(buffer, 0, await stream.ReadAsync(buffer)));
            Assert.StartsWith("GET /v1/jobs/j/events HTTP/1.0\r\n", request.ToString(), StringComparison.Ordinal);
            Assert.Contains("Authorization: Bearer nb_key\r\n", request.ToString(), StringComparison.Ordinal);
            var bytes = Encoding.UTF8.GetBytes(response);
            try
            {
                for (var at = 0; at < bytes.Length; at += fragment)
                {
                    await stream.WriteAsync(bytes.AsMemory(at, Math.Min(fragment, bytes.Length - at)));
                    await stream.FlushAsync();
                }
            }
            catch (IOException)
            {
                // A reader stops at the headers of a refused stream and closes; the rest of the answer has nowhere to go.
            }
        }
        var read = await reader.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, opened.CurrentCount);
        return read;
    }
}
