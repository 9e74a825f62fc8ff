using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace NewBie.Host.Tests.Api;

/// <summary>Server:ListenBacklog reaches the listening socket's backlog (Kestrel's socket transport).</summary>
public sealed class ListenBacklogTests
{
    [Fact]
    public void The_listening_socket_waits_for_4096_connections_unless_told_otherwise()
    {
        using var app = new NewBieApplication();
        _ = app.CreateClient();

        Assert.Equal(4096, app.Service<IOptions<SocketTransportOptions>>().Value.Backlog);
    }

    [Fact]
    public void Server_ListenBacklog_sets_the_backlog()
    {
        using var app = new NewBieApplication(new() { ["Server:ListenBacklog"] = "100" });
        _ = app.CreateClient();

        Assert.Equal(100, app.Service<IOptions<SocketTransportOptions>>().Value.Backlog);
    }

    [Fact]
    public void A_backlog_that_is_not_positive_stops_the_start()
    {
        using var app = new NewBieApplication(new() { ["Server:ListenBacklog"] = "0" });

        var error = Assert.Throws<OptionsValidationException>(() => app.CreateClient());

        Assert.Contains("Server:ListenBacklog", error.Message);
    }
}
