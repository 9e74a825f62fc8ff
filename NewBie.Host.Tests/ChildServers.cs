using NewBie.LoadBench;

namespace NewBie.Host.Tests;

/// <summary>
/// A temp data folder and the real servers (ServerProcess, shared with bench/NewBie.LoadBench) a test starts on it;
/// on dispose every server is killed and the folder removed.
/// </summary>
internal sealed class ChildServers : IAsyncDisposable
{
    private readonly List<ServerProcess> _servers = [];
    private readonly List<string> _folders = [];

    public ChildServers() => DataDir = NewDataDir();

    public string DataDir { get; }

    /// <summary>Another temp data folder, removed on dispose: each node of a multi-node test has its own.</summary>
    public string NewDataDir()
    {
        var folder = Directory.CreateTempSubdirectory("newbie-proc-").FullName;
        _folders.Add(folder);
        return folder;
    }

    /// <summary>Starts <c>serve</c> on the folder (tiny model, settings as KEY=VALUE); returns once it listens.</summary>
    public Task<ServerProcess> StartAsync(params string[] settings) => StartOnAsync(DataDir, settings);

    /// <summary>Starts <c>serve</c> on <paramref name="dataDir"/> (one of <see cref="NewDataDir"/>'s).</summary>
    public async Task<ServerProcess> StartOnAsync(string dataDir, params string[] settings)
    {
        var server = await ServerProcess.StartAsync(dataDir, settings);
        _servers.Add(server);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers) await server.DisposeAsync();
        foreach (var folder in _folders)
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
    }
}
