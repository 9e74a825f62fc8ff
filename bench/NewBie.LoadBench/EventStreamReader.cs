using System.Buffers;
using System.Net.Sockets;
using System.Text;

namespace NewBie.LoadBench;

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
    /// Opens the stream, signals <paramref name="opened"/> once the response's headers came, reads to the done event;
    /// true when steps 1..<paramref name="steps"/> (at most 64) and the done event were all seen.
    /// </summary>
    public static async Task<bool> ReadAsync(string baseUrl, string key, string id, int steps, CountdownEvent opened)
    {
        var signalled = false;
        var buffer = ArrayPool<byte>.Shared.Rent(8192);
        try
        {
            var uri = new Uri(baseUrl);
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(uri.Host, uri.Port);
            await socket.SendAsync(Encoding.ASCII.GetBytes(
                $"GET /v1/jobs/{id}/events HTTP/1.0\r\nHost: {uri.Authority}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"), SocketFlags.None);
            var filled = 0;
            var headersRead = false;
            ulong seen = 0;
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
                if (read == 0) return false;
                filled += read;
                var start = 0;
                if (!headersRead)
                {
                    var end = buffer.AsSpan(0, filled).IndexOf(HeaderEnd);
                    if (end < 0) continue;
                    headersRead = true;
                    opened.Signal();
                    signalled = true;
                    if (!buffer.AsSpan(0, end).StartsWith("HTTP/1.1 200"u8) && !buffer.AsSpan(0, end).StartsWith("HTTP/1.0 200"u8)) return false;
                    start = end + HeaderEnd.Length;
                }
                while (buffer.AsSpan(start, filled - start).IndexOf(FrameEnd) is var length and >= 0)
                {
                    var frame = buffer.AsSpan(start, length);
                    start += length + FrameEnd.Length;
                    if (frame.StartsWith(DoneEvent))
                        return steps >= 64 ? seen == ulong.MaxValue : seen == (1UL << steps) - 1;
                    if (!frame.StartsWith(StepEvent) || frame.IndexOf(StepField) is not (var at and >= 0)) continue;
                    var number = 0;
                    foreach (var b in frame[(at + StepField.Length)..])
                    {
                        if (b is < (byte)'0' or > (byte)'9') break;
                        number = number * 10 + (b - '0');
                    }
                    if (number is >= 1 and <= 64) seen |= 1UL << (number - 1);
                }
                buffer.AsSpan(start, filled - start).CopyTo(buffer);
                filled -= start;
            }
        }
        catch (SocketException)
        {
            return false;
        }
        finally
        {
            if (!signalled) opened.Signal();
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
