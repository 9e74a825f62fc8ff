using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace NewBie.Host.Tests.Models;

/// <summary>
/// A Hugging Face-like file server on 127.0.0.1: GET /{repo}/resolve/{revision}/{path}, honouring "Range: bytes=N-"
/// with 206; can cut the connection after some bytes of a file once, as a dropped download does.
/// </summary>
public sealed class FakeHub : IDisposable
{
    private readonly HttpListener _listener = new();

    public FakeHub()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public string Endpoint { get; }

    /// <summary>URL path (after the host) → content.</summary>
    public ConcurrentDictionary<string, byte[]> Files { get; } = new();

    /// <summary>URL path → bytes to send before dropping the connection (once).</summary>
    public ConcurrentDictionary<string, int> CutAfter { get; } = new();

    public ConcurrentQueue<(string Path, string? Range, string? Authorization)> Requests { get; } = new();

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            _ = Task.Run(() => ServeAsync(context));
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        var path = Uri.UnescapeDataString(context.Request.Url!.AbsolutePath);
        var range = context.Request.Headers["Range"];
        Requests.Enqueue((path, range, context.Request.Headers["Authorization"]));
        var response = context.Response;
        try
        {
            if (!Files.TryGetValue(path, out var content))
            {
                response.StatusCode = 404;
                response.Close();
                return;
            }
            var offset = 0L;
            if (range is not null && range.StartsWith("bytes=") && range.EndsWith('-'))
            {
                offset = long.Parse(range[6..^1]);
                if (offset >= content.Length)
                {
                    response.StatusCode = 416;
                    response.Close();
                    return;
                }
                response.StatusCode = 206;
                response.Headers["Content-Range"] = $"bytes {offset}-{content.Length - 1}/{content.Length}";
            }
            response.ContentLength64 = content.Length - offset;
            if (CutAfter.TryRemove(path, out var cut))
            {
                await response.OutputStream.WriteAsync(content.AsMemory((int)offset, cut));
                await response.OutputStream.FlushAsync();
                response.Abort();
                return;
            }
            await response.OutputStream.WriteAsync(content.AsMemory((int)offset));
            response.Close();
        }
        catch (HttpListenerException)
        {
        }
    }

    public void Dispose() => _listener.Close();
}
