namespace NewBie.Host.Tests.Admin;

/// <summary>The admin pages of the built NewBie.dll run as `dotnet run` runs it: a real process, Production environment.</summary>
public sealed class AdminProcessTests : IDisposable
{
    private readonly NewBieProcesses _processes = new();

    public void Dispose() => _processes.Dispose();

    [Fact]
    public async Task Built_server_outside_development_serves_the_framework_script_of_the_interactive_pages()
    {
        var (_, url) = await _processes.StartServerAsync("--model", "tiny");
        using var http = new HttpClient { BaseAddress = new Uri(url) };

        using var response = await http.GetAsync("/_framework/blazor.web.js");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Blazor", await response.Content.ReadAsStringAsync());
    }
}
