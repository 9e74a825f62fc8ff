using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

using NewBie.Host.Tests.Telemetry;

namespace NewBie.Host.Tests.Api;

/// <summary>
/// Request bodies against the real Kestrel (the in-memory test server has no body limits or data rates), driven over
/// a raw socket so that a test decides exactly which bytes are sent and when.
/// </summary>
public sealed class RequestBodyTests : IDisposable
{
    private readonly NewBieApplication _app = new(new() { ["Serilog:MinimumLevel:Default"] = "Information" });
    private readonly int _port;

    public RequestBodyTests()
    {
        _app.UseKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            // A body slower than 100 bytes/s after two seconds is refused (Kestrel's default: 240 bytes/s after 5 s).
            o.Limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 100, gracePeriod: TimeSpan.FromSeconds(2));
        });
        _app.StartServer();
        _port = new Uri(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()).Port;
    }

    public void Dispose() => _app.Dispose();

    [Theory]
    [InlineData("/v1/auth/login")]
    [InlineData("/v1/admin/users")]
    public async Task Anonymous_25_MB_body_is_413_before_a_byte_of_it_is_sent(string path)
    {
        // A user exists, so a loopback caller without credentials is anonymous.
        _app.KeyFor("alice");
        using var socket = await ConnectAsync();

        // Only the head goes out: the server must answer from the declared length alone.
        await SendAsync(socket, Head(path, contentLength: 25 * 1024 * 1024));
        var (status, body) = await ReadResponseAsync(socket);

        Assert.Equal(413, status);
        Assert.Equal("payload_too_large", JsonDocument.Parse(body).RootElement.Str("code"));
    }

    [Fact]
    public async Task Anonymous_body_above_the_anonymous_limit_is_413_but_a_caller_with_a_key_may_send_more()
    {
        var key = _app.KeyFor("alice");
        var body = JsonSerializer.Serialize(new { prompt = "1girl " + new string('a', 8000), width = 256, height = 256, steps = 1 });
        using var anonymous = await ConnectAsync();
        using var withKey = await ConnectAsync();

        await SendAsync(anonymous, Head("/v1/jobs", Encoding.UTF8.GetByteCount(body)) + body);
        await SendAsync(withKey, Head("/v1/jobs", Encoding.UTF8.GetByteCount(body), key) + body);

        Assert.Equal(413, (await ReadResponseAsync(anonymous)).Status);
        Assert.Equal(202, (await ReadResponseAsync(withKey)).Status);
    }

    [Fact]
    public async Task Slow_body_is_408_request_timeout_logged_as_a_warning_without_a_stack_trace()
    {
        using var socket = await ConnectAsync();

        // The head promises 10,000 bytes; a few arrive and then nothing: the data rate falls below the minimum.
        await SendAsync(socket, Head("/v1/jobs", contentLength: 10_000) + "{\"prompt\":");
        var (status, body) = await ReadResponseAsync(socket);

        Assert.Equal(408, status);
        Assert.Equal("request_timeout", JsonDocument.Parse(body).RootElement.Str("code"));
        var events = await LogEventsAsync(e => e.Any(x => Message(x).Contains("408", StringComparison.Ordinal)));
        Assert.DoesNotContain(events, e => Level(e) is "Error" or "Fatal");
        var warning = Assert.Single(events, e => e.TryGetProperty("SourceContext", out var c) && c.GetString() == "NewBie.Host.Api.RequestBodies");
        Assert.Equal("Warning", Level(warning));
        Assert.False(warning.TryGetProperty("@x", out _));
    }

    [Fact]
    public async Task Body_cut_off_by_the_client_is_not_logged_as_an_error()
    {
        using (var socket = await ConnectAsync())
        {
            await SendAsync(socket, Head("/v1/jobs", contentLength: 10_000) + "{\"prompt\":\"half");
            socket.Shutdown(SocketShutdown.Both);
        }

        var events = await LogEventsAsync(e => e.Any(x => Message(x).Contains("request body", StringComparison.Ordinal) || Message(x).Contains("closed the connection", StringComparison.Ordinal)));

        Assert.DoesNotContain(events, e => Level(e) is "Error" or "Fatal");
        Assert.All(events.Where(e => Level(e) == "Warning"), e => Assert.False(e.TryGetProperty("@x", out _)));
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, _port);
        return socket;
    }

    private string Head(string path, long contentLength, string? key = null) =>
        $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{_port}\r\nContent-Type: application/json\r\nContent-Length: {contentLength}\r\n"
        + (key is null ? "" : $"Authorization: Bearer {key}\r\n") + "\r\n";

    private static async Task SendAsync(Socket socket, string text) => await socket.SendAsync(Encoding.UTF8.GetBytes(text));

    /// <summary>Reads one response: its status and, by Content-Length or to the close, its body.</summary>
    private static async Task<(int Status, string Body)> ReadResponseAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = new List<byte>();
        var buffer = new byte[8192];
        while (true)
        {
            var text = Encoding.UTF8.GetString(received.ToArray());
            var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headEnd >= 0)
            {
                var head = text[..headEnd];
                var status = int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                var length = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) is { } line
                    ? int.Parse(line["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture) : -1;
                var bodyBytes = received.Count - Encoding.UTF8.GetByteCount(text[..(headEnd + 4)]);
                if (length >= 0 && bodyBytes >= length) return (status, text[(headEnd + 4)..]);
                if (length < 0 && text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal)) return (status, Dechunk(text[(headEnd + 4)..]));
            }
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (read == 0)
            {
                Assert.True(headEnd >= 0, $"connection closed before a response: {text}");
                var rest = text[(headEnd + 4)..];
                return (int.Parse(text.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), rest.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal) ? Dechunk(rest) : rest);
            }
            received.AddRange(buffer.AsSpan(0, read).ToArray());
        }
    }

    /// <summary>The body of a chunked response: each chunk is its hex size, CRLF, the data, CRLF.</summary>
    private static string Dechunk(string chunked)
    {
        var body = new StringBuilder();
        var at = 0;
        while (true)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = Convert.ToInt32(chunked[at..lineEnd], 16);
            if (size == 0) return body.ToString();
            body.Append(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }

    private static string Message(JsonElement e) => e.TryGetProperty("@mt", out var m) ? RenderedOrTemplate(e, m.GetString()!) : "";

    /// <summary>The template with its properties filled in (compact JSON keeps them apart).</summary>
    private static string RenderedOrTemplate(JsonElement e, string template)
    {
        foreach (var p in e.EnumerateObject()) template = template.Replace("{" + p.Name + "}", p.Value.ToString(), StringComparison.Ordinal);
        return template;
    }

    private static string Level(JsonElement e) => e.TryGetProperty("@l", out var l) ? l.GetString()! : "Information";

    private Task<List<JsonElement>> LogEventsAsync(Func<List<JsonElement>, bool> done) =>
        LogFiles.WaitForAsync(_app.DataDir, done, TimeSpan.FromSeconds(20));
}
