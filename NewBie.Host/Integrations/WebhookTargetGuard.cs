using System.Net;
using System.Net.Sockets;

namespace NewBie.Host.Integrations;

public sealed class WebhookTargetRefusedException(string host, IPAddress address)
    : Exception($"The webhook host '{host}' resolves to {address}, a loopback, private or reserved address; set Webhooks:AllowPrivateTargets to allow it.")
{
    public IPAddress Address { get; } = address;
}

/// <summary>
/// Keeps webhooks off the server's own network (SSRF): the host is resolved once, every address is checked, and the
/// connection goes to a checked address — so a DNS answer that changes between check and connect (rebinding) cannot
/// slip through. Used as the SocketsHttpHandler's ConnectCallback.
/// </summary>
public sealed class WebhookTargetGuard(bool allowPrivateTargets)
{
    /// <summary>The addresses to connect to, all checked; throws <see cref="WebhookTargetRefusedException"/> on any refused one.</summary>
    public async Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var bare = host.Trim('[', ']');
        var addresses = IPAddress.TryParse(bare, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(bare, cancellationToken);
        if (addresses.Length == 0) throw new SocketException((int)SocketError.HostNotFound);
        if (!allowPrivateTargets)
            foreach (var address in addresses)
                if (!IsPublic(address)) throw new WebhookTargetRefusedException(host, address);
        return addresses;
    }

    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var addresses = await ResolveAsync(context.DnsEndPoint.Host, cancellationToken);
        Exception? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
        }
        throw last!;
    }

    /// <summary>False for loopback, private, link-local, shared (CGNAT), multicast and reserved ranges, IPv4 and IPv6.</summary>
    public static bool IsPublic(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (IPAddress.IsLoopback(address)) return false;
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return !(b[0] is 0 or 10 or 127 || b[0] >= 224
                || (b[0] == 100 && b[1] is >= 64 and < 128)
                || (b[0] == 169 && b[1] == 254)
                || (b[0] == 172 && b[1] is >= 16 and < 32)
                || (b[0] == 192 && b[1] == 0 && b[2] is 0 or 2)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 198 && b[1] is 18 or 19)
                || (b[0] == 198 && b[1] == 51 && b[2] == 100)
                || (b[0] == 203 && b[1] == 0 && b[2] == 113));
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return false;
        if (address.Equals(IPAddress.IPv6Any) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal)
            return false;
        var v6 = address.GetAddressBytes();
        // 64:ff9b::/96 (NAT64) and 2001:db8::/32 (documentation) can hide or fake an internal IPv4 target.
        if (v6[0] == 0x00 && v6[1] == 0x64 && v6[2] == 0xff && v6[3] == 0x9b) return false;
        if (v6[0] == 0x20 && v6[1] == 0x01 && v6[2] == 0x0d && v6[3] == 0xb8) return false;
        return true;
    }
}
