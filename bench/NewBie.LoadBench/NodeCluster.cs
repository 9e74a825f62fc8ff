using System.Net.Http.Json;
using System.Text.Json;

namespace NewBie.LoadBench;

/// <summary>
/// Several real NewBie servers ("nodes"), each on a data folder of its own, sharing one PostgreSQL (and the outputs
/// store the shared settings name): what the multi-node tests and the multi-node bench run against. Users and keys are
/// made through the admin API of the first node, as its loopback local admin while no user exists.
/// </summary>
internal sealed class NodeCluster : IAsyncDisposable
{
    private readonly string[] _shared;
    private readonly List<string> _folders = [];

    private NodeCluster(string[] shared) => _shared = shared;

    /// <summary>The running nodes, by index; a killed node's slot holds its dead process until <see cref="RestartAsync"/>.</summary>
    public List<ServerProcess> Nodes { get; } = [];

    public string AdminKey { get; private set; } = "";

    /// <summary>The nodes' data folders, by index.</summary>
    public IReadOnlyList<string> DataDirs => _folders;

    /// <summary>
    /// Starts <paramref name="count"/> nodes named node-0, node-1, … with the shared settings (KEY=VALUE:
    /// Storage:Provider=postgres, ConnectionStrings:Postgres=…, Outputs:…, Jobs:NodeTimeout=…), waits until every one is
    /// ready, and makes an admin "ops" with a key.
    /// </summary>
    public static async Task<NodeCluster> StartAsync(int count, params string[] shared)
    {
        var cluster = new NodeCluster(shared);
        try
        {
            for (var i = 0; i < count; i++)
            {
                cluster._folders.Add(Directory.CreateTempSubdirectory("newbie-node-").FullName);
                cluster.Nodes.Add(await cluster.StartNodeAsync(i));
            }
            await Task.WhenAll(cluster.Nodes.Select(n => n.WaitReadyAsync(TimeSpan.FromSeconds(120))));
            cluster.AdminKey = await BootstrapAdminAsync(cluster.Nodes[0].Url);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public static string NameOf(int index) => $"node-{index}";

    /// <summary>A client of <paramref name="key"/> (the admin's when null) against node <paramref name="index"/>.</summary>
    public HttpClient Client(int index, string? key = null)
    {
        var http = new HttpClient { BaseAddress = new Uri(Nodes[index].Url), Timeout = TimeSpan.FromSeconds(60) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", key ?? AdminKey);
        return http;
    }

    /// <summary>Creates a plain user through the admin API and returns a new key of it.</summary>
    public async Task<string> CreateUserAsync(string name)
    {
        using var http = Client(0);
        return await CreateUserAsync(http, name, admin: false);
    }

    /// <summary>
    /// The first admin of a shared store, the way a person makes it: as the loopback local admin (no user exists yet)
    /// create "ops" with a password, which ends the local admin; sign in with it; make a key on the signed-in session.
    /// </summary>
    private static async Task<string> BootstrapAdminAsync(string url)
    {
        var password = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        using var http = new HttpClient(new HttpClientHandler { CookieContainer = new System.Net.CookieContainer() }) { BaseAddress = new Uri(url) };
        // A cookie-authenticated write must come from the site's own pages: what a browser on the admin page sends.
        http.DefaultRequestHeaders.Add("Origin", url);
        using (var created = await http.PostAsJsonAsync("/v1/admin/users", new { name = "ops", role = "admin", password }))
            if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"creating the admin answered {(int)created.StatusCode}: {await created.Content.ReadAsStringAsync()}");
        using (var login = await http.PostAsJsonAsync("/v1/auth/login", new { username = "ops", password }))
            if (!login.IsSuccessStatusCode) throw new InvalidOperationException($"signing in as the admin answered {(int)login.StatusCode}: {await login.Content.ReadAsStringAsync()}");
        using var key = await http.PostAsJsonAsync("/v1/admin/users/ops/keys", new { name = "bench" });
        if (!key.IsSuccessStatusCode) throw new InvalidOperationException($"creating the admin's key answered {(int)key.StatusCode}: {await key.Content.ReadAsStringAsync()}");
        return (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    private static async Task<string> CreateUserAsync(HttpClient http, string name, bool admin)
    {
        using (var created = await http.PostAsJsonAsync("/v1/admin/users", new { name, role = admin ? "admin" : "user" }))
            if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"creating user {name} answered {(int)created.StatusCode}: {await created.Content.ReadAsStringAsync()}");
        using var key = await http.PostAsJsonAsync($"/v1/admin/users/{name}/keys", new { name = "bench" });
        if (!key.IsSuccessStatusCode) throw new InvalidOperationException($"creating a key of {name} answered {(int)key.StatusCode}: {await key.Content.ReadAsStringAsync()}");
        return (await key.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("key").GetString()!;
    }

    /// <summary>SIGKILL of node <paramref name="index"/>: no shutdown, no last heartbeat.</summary>
    public Task KillAsync(int index) => Nodes[index].KillAsync();

    /// <summary>Starts node <paramref name="index"/> again on its data folder and waits until it is ready.</summary>
    public async Task RestartAsync(int index)
    {
        await Nodes[index].DisposeAsync();
        Nodes[index] = await StartNodeAsync(index);
        await Nodes[index].WaitReadyAsync(TimeSpan.FromSeconds(120));
    }

    /// <summary>The node list as node <paramref name="index"/> serves it (GET /v1/admin/nodes).</summary>
    public async Task<JsonElement[]> NodeListAsync(int index)
    {
        using var admin = Client(index);
        var list = await admin.GetFromJsonAsync<JsonElement>("/v1/admin/nodes");
        return [.. list.GetProperty("nodes").EnumerateArray()];
    }

    /// <summary>The node whose heartbeat says it runs <paramref name="jobId"/>, polled until one does (or the deadline).</summary>
    public async Task<int> RunningNodeOfAsync(string jobId, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            for (var i = 0; i < Nodes.Count; i++)
            {
                if (Nodes[i].Process.HasExited) continue;
                var self = (await NodeListAsync(i)).FirstOrDefault(n => n.GetProperty("name").GetString() == NameOf(i));
                if (self.ValueKind == JsonValueKind.Object && self.GetProperty("running_job").GetString() == jobId) return i;
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no node ran {jobId} within {timeout}");
            await Task.Delay(50);
        }
    }

    private Task<ServerProcess> StartNodeAsync(int index) =>
        ServerProcess.StartAsync(_folders[index], [.. _shared, $"Server:NodeName={NameOf(index)}"]);

    public async ValueTask DisposeAsync()
    {
        foreach (var node in Nodes) await node.DisposeAsync();
        foreach (var folder in _folders)
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
    }
}
