using NewBie.LoadBench;

namespace NewBie.Host.Tests;

/// <summary>
/// A temp data folder and the real servers (ServerProcess, shared with bench/NewBie.LoadBench) a test starts on it;
/// on dispose every server is killed and the folder removed.
/// </summary>
internal sealed class ChildServers : IAsyncDisposable
{
    private readonly List<ServerProcess> _servers = [];

    public string DataDir { get; } = Directory.CreateTempSubdirectory("newbie-proc-").FullName;

    /// <summary>Starts <c>serve</c> on the folder (tiny model, settings as KEY=VALUE); returns once it listens.</summary>
    public async Task<ServerProcess> StartAsync(params string[] settings)
    {
        var server = await ServerProcess.StartAsync(DataDir, settings);
        _servers.Add(server);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers) await server.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}
