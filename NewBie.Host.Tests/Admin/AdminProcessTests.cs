namespace NewBie.Host.Tests.Admin;

/// <summary>The admin pages of the built NewBie.dll run as `dotnet run` runs it: a real process, Production environment.</summary>
public sealed class AdminProcessTests : IAsyncLifetime
{
    private readonly ChildServers _servers = new();

    public Task InitializeAsync() => Task.CompletedTask;

    // xunit 2 awaits IAsyncLifetime, not IAsyncDisposable: the child servers must be killed here.
    public async Task DisposeAsync() => await _servers.DisposeAsync();

    [Fact]
    public async Task Built_server_outside_development_serves_the_framework_script_of_the_interactive_pages()
    {
        var server = await _servers.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(server.Url) };

        using var response = await http.GetAsync("/_framework/blazor.web.js");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Blazor", await response.Content.ReadAsStringAsync());
    }
}
