namespace NewBie.Host.Api;

/// <summary>How the server is reached from outside.</summary>
public sealed class ServerOptions
{
    public const string Section = "Server";

    /// <summary>
    /// The absolute base URL clients reach this server at (e.g. https://newbie.example/), for the few answers that must
    /// be absolute (OpenAI url images). Unset, those answers are relative: a request's Host header is the client's to
    /// choose and never makes a URL.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>
    /// This node's name in the node list (admin pages, /v1/admin/nodes) when several nodes share one PostgreSQL. Default:
    /// the machine name and the process id ("gpu-box-1:4242"). Give each node a stable name to keep its row across
    /// restarts. Restart needed.
    /// </summary>
    public string? NodeName { get; set; }

    /// <summary>
    /// How often (seconds) the server looks whether a burst of requests is over, to give the memory it took back to the
    /// system with one full collection (<see cref="IdleMemoryTrim"/>); 0 turns it off. Default 10.
    /// </summary>
    public int IdleMemoryTrimSeconds { get; set; } = 10;

    /// <summary>
    /// How many new connections may wait to be accepted (the listening socket's backlog; Linux caps it at
    /// net.core.somaxconn, 4096 on current kernels). Past it the system drops a client's connection request, which the
    /// client repeats only a second later: with Kestrel's default of 512, a thousand clients connecting at once to a server
    /// that had just started overflowed it. Default 4096. Restart needed.
    /// </summary>
    public int ListenBacklog { get; set; } = 4096;

    /// <summary><paramref name="path"/> (starting with '/') under <see cref="PublicBaseUrl"/>, or as it is when none is set.</summary>
    public string Url(string path) => PublicBaseUrl is { Length: > 0 } root ? root.TrimEnd('/') + path : path;

    public static bool IsValidBase(string? value) =>
        value is null or ""
        || (Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            && uri.UserInfo.Length == 0 && uri.Query.Length == 0 && uri.Fragment.Length == 0);
}
