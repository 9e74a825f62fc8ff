using System.Buffers;
using System.Net.Sockets;
using System.Numerics;
using System.Text;

namespace NewBie.LoadBench;

/// <summary>
/// What one stream saw: whether it was answered 200, how many distinct steps of 1..steps came (each counted once),
/// whether they came in ascending order, and whether the done event ended it.
/// </summary>
internal readonly record struct StreamRead(bool Opened, int Steps, bool InOrder, bool Done)
{
    public bool SawEveryStep(int steps) => Opened && Done && InOrder && Steps == steps;
}

/// <summary>
/// Reads one <c>GET /v1/jobs/{id}/events</c> over a raw socket: the bench opens 1,000 of them on the same 2 cores as the
/// server, and HttpClient's per-stream machinery (a connection pool entry, a StreamReader, a JsonDocument per step)
/// made the bench itself the load it was measuring. HTTP/1.0, so the body is the stream until the server closes it
/// (no chunked framing to undo); frames are found by their blank line and only the step number is parsed.
/// </summary>
internal static class EventStreamReader
{
    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();
    private static readonly byte[] FrameEnd = "\n\n"u8.ToArray();
    private static readonly byte[] StepEvent = "event: step\n"u8.ToArray();
    private static readonly byte[] DoneEvent = "event: done\n"u8.ToArray();
    private static readonly byte[] StepField = "\"step\":"u8.ToArray();

    /// <summary>
    /// Opens the stream, signals <paramref name="opened"/> once the response's headers came (or the connection failed),
    /// reads to the done event or the end of the connection; counts the steps 1..<paramref name="steps"/> (at most 64).
    /// </summary>
    public static async Task<StreamRead> ReadAsync(string baseUrl, string key, string id, int steps, CountdownEvent opened)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(steps, 64);
        var signalled = false;
        var buffer = ArrayPool<byte>.Shared.Rent(8192);
        var status200 = false;
        ulong seen = 0;
        var last = -1;
        var inOrder = true;
        StreamRead Result(bool done) => new(status200, BitOperations.PopCount(seen), inOrder, done);
        try
        {
            var uri = new Uri(baseUrl);
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(uri.Host, uri.Port);
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"GET /v1/jobs/{id}/events HTTP/1.0\r\nHost: {uri.Authority}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"), SocketFlags.None);
            var filled = 0;
            var headersRead = false;
            while (true)
            {
                if (filled == buffer.Length)
                {
                    // A frame larger than the buffer (the done event carries the job): grow.
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (read == 0) return Result(done: false);
                filled += read;
                var start = 0;
                if (!headersRead)
                {
                    var end = buffer.AsSpan(0, filled).IndexOf(HeaderEnd);
                    if (end < 0) continue;
                    headersRead = true;
                    opened.Signal();
                    signalled = true;
                    status200 = buffer.AsSpan(0, end).StartsWith("HTTP/1.1 200"u8) || buffer.AsSpan(0, end).StartsWith("HTTP/1.0 200"u8);
                    if (!status200) return Result(done: false);
                    start = end + HeaderEnd.Length;
                }
                while (buffer.AsSpan(start, filled - start).IndexOf(FrameEnd) is var length and >= 0)
                {
                    var frame = buffer.AsSpan(start, length);
                    start += length + FrameEnd.Length;
                    if (frame.StartsWith(DoneEvent)) return Result(done: true);
                    if (!frame.StartsWith(StepEvent) || frame.IndexOf(StepField) is not (var at and >= 0)) continue;
                    var number = 0;
                    foreach (var b in frame[(at + StepField.Length)..])
                    {
                        if (b is < (byte)'0' or > (byte)'9') break;
                        number = number * 10 + (b - '0');
                    }
                    if (number <= last) inOrder = false;
                    last = number;
                    if (number >= 1 && number <= steps) seen |= 1UL << (number - 1);
                }
                buffer.AsSpan(start, filled - start).CopyTo(buffer);
                filled -= start;
            }
        }
        catch (SocketException)
        {
            return Result(done: false);
        }
        finally
        {
            if (!signalled) opened.Signal();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
