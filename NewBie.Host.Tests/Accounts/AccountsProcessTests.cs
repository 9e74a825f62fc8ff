using System.Net;
using System.Net.Http.Headers;
using NewBie.LoadBench;

namespace NewBie.Host.Tests.Accounts;

/// <summary>The users and keys verbs of the built NewBie.dll, as scripts call them (design.md §9).</summary>
public sealed class AccountsProcessTests : IAsyncLifetime
{
    private readonly ChildServers _servers = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 awaits IAsyncLifetime, not IAsyncDisposable: the child servers must be killed here.
    public async Task DisposeAsync() => await _servers.DisposeAsync();

    [Fact]
    public async Task Keys_create_prints_the_key_on_the_last_line_and_a_running_server_accepts_it_and_holds_off_the_verbs()
    {
        var (addCode, _, _) = await RunAsync("users", "add", "alice", "--admin", "--data-dir", _servers.DataDir);
        var (keyCode, stdout, _) = await RunAsync("keys", "create", "alice", "--data-dir", _servers.DataDir);
        var key = stdout.TrimEnd().Split('\n')[^1].Trim();

        var url = await StartServerAsync();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var withKey = await http.GetAsync("/v1/admin/users");
        using var anonymous = await new HttpClient().GetAsync($"{url}/v1/jobs");
        var (busyCode, _, busyError) = await RunAsync("keys", "create", "alice", "--data-dir", _servers.DataDir);

        Assert.Equal((0, 0), (addCode, keyCode));
        Assert.Matches("^nb_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", key);
        Assert.Equal(HttpStatusCode.OK, withKey.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal(3, busyCode);
        Assert.Contains("admin API", busyError, StringComparison.Ordinal);
    }

    private static Task<(int Code, string Out, string Err)> RunAsync(params string[] args) => ServerProcess.RunAsync(args);

    private async Task<string> StartServerAsync() => (await _servers.StartAsync()).Url;
}
