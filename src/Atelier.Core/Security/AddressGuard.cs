using System.Net;
using System.Net.Sockets;
using Atelier.Contracts.Errors;

namespace Atelier.Core.Security;

/// <summary>
/// Keeps what the server fetches or calls (model downloads, webhooks, moderation endpoints, URL tests) off its own
/// networks: loopback, private, link-local, CGNAT, multicast and reserved ranges are refused, on the address actually connected to (so DNS rebinding and redirects are
/// covered: every hop connects through the same check).
/// </summary>
public static class AddressGuard
{
    private static readonly (IPAddress Net, int Bits)[] DeniedV4 =
    [
        (IPAddress.Parse("0.0.0.0"), 8), (IPAddress.Parse("10.0.0.0"), 8), (IPAddress.Parse("100.64.0.0"), 10),
        (IPAddress.Parse("127.0.0.0"), 8), (IPAddress.Parse("169.254.0.0"), 16), (IPAddress.Parse("172.16.0.0"), 12),
        (IPAddress.Parse("192.0.0.0"), 24), (IPAddress.Parse("192.0.2.0"), 24), (IPAddress.Parse("192.168.0.0"), 16),
        (IPAddress.Parse("198.18.0.0"), 15), (IPAddress.Parse("198.51.100.0"), 24), (IPAddress.Parse("203.0.113.0"), 24),
        (IPAddress.Parse("224.0.0.0"), 4), (IPAddress.Parse("240.0.0.0"), 4),
    ];

    // Besides loopback, ULA, link-local, multicast and documentation: every form that carries an IPv4 address inside
    // (IPv4-compatible ::/96, SIIT, NAT64 both well-known and local, 6to4, Teredo), whose IPv4 part could be anything,
    // the deprecated site-local range, and the discard and benchmarking prefixes.
    private static readonly (IPAddress Net, int Bits)[] DeniedV6 =
    [
        (IPAddress.IPv6None, 96), (IPAddress.Parse("::ffff:0:0:0"), 96), (IPAddress.Parse("fc00::"), 7), (IPAddress.Parse("fe80::"), 10),
        (IPAddress.Parse("fec0::"), 10), (IPAddress.Parse("ff00::"), 8), (IPAddress.Parse("2001:db8::"), 32), (IPAddress.Parse("64:ff9b::"), 96),
        (IPAddress.Parse("64:ff9b:1::"), 48), (IPAddress.Parse("2002::"), 16), (IPAddress.Parse("2001::"), 32), (IPAddress.Parse("2001:2::"), 48),
        (IPAddress.Parse("100::"), 64),
    ];

    public static bool IsDenied(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        var table = address.AddressFamily == AddressFamily.InterNetwork ? DeniedV4 : DeniedV6;
        return table.Any(r => InRange(address, r.Net, r.Bits));
    }

    private static bool InRange(IPAddress address, IPAddress net, int bits)
    {
        var a = address.GetAddressBytes();
        var n = net.GetAddressBytes();
        if (a.Length != n.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length && bits > 0; i++, bits -= 8)
        {
            var mask = bits >= 8 ? 0xFF : (byte)(0xFF << (8 - bits));
            if ((a[i] & mask) != (n[i] & mask))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The checks that can be made before anything is fetched: an absolute http(s) URL, and no literal address in a
    /// denied range. A failure is <c>p_model_invokemodeldownloaderror</c> with the reason.
    /// </summary>
    public static string CheckUrlAtRequest(string url, bool allowPrivate)
    {
        if (url.Length > 2048 || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            throw Refused("the URL is not an absolute URL of at most 2048 characters");
        }

        if (uri.Scheme is not ("http" or "https"))
        {
            throw Refused($"the scheme {uri.Scheme} is not allowed, only http and https");
        }

        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            throw Refused("credentials in the URL are not allowed");
        }

        if (!allowPrivate && IPAddress.TryParse(uri.IdnHost, out var literal) && IsDenied(literal))
        {
            throw Refused($"the address {literal} is in a private, loopback or reserved range");
        }

        return uri.AbsoluteUri;
    }

    /// <summary>
    /// The same checks for a URL a tenant saves (a webhook, a moderation endpoint) into a column of 2048 characters: a
    /// failure is <c>p_common_inputinvalid</c> naming <paramref name="field"/>. Returns the normalized URL.
    /// </summary>
    public static string CheckUrlInput(string url, string field, bool allowPrivate)
    {
        string normalized;
        try
        {
            normalized = CheckUrlAtRequest(url, allowPrivate);
        }
        catch (AtelierException e) when (e.Code == ErrorCatalog.p_model_invokemodeldownloaderror)
        {
            throw AtelierException.InvalidInput(field, e.Values.GetValueOrDefault("Reason") ?? "is not a usable URL");
        }

        return normalized.Length <= 2048 ? normalized : throw AtelierException.InvalidInput(field, "is longer than 2048 characters");
    }

    public static AtelierException Refused(string reason) =>
        AtelierException.With(ErrorCatalog.p_model_invokemodeldownloaderror, "Reason", reason);

    /// <summary>
    /// An HTTP handler that refuses denied addresses at connect time and never follows redirects by itself;
    /// <paramref name="exempt"/> lets single host and port pairs through the guard.
    /// </summary>
    public static SocketsHttpHandler CreateHandler(bool allowPrivate, Func<string, int, bool>? exempt = null) => new()
    {
        // Straight to the target, never through an HTTP(S)_PROXY from the environment: the guard must see the address
        // the request really goes to, not a proxy's.
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectTimeout = TimeSpan.FromSeconds(15),
        ConnectCallback = async (context, ct) =>
        {
            var addresses = IPAddress.TryParse(context.DnsEndPoint.Host, out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, ct);
            var open = allowPrivate || exempt?.Invoke(context.DnsEndPoint.Host, context.DnsEndPoint.Port) == true;
            var allowed = addresses.Where(a => open || !IsDenied(a)).ToList();
            if (allowed.Count == 0)
            {
                throw new DownloadRefusedException(
                    $"{context.DnsEndPoint.Host} resolves only to private, loopback or reserved addresses ({string.Join(", ", addresses.Take(3))})");
            }

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync([.. allowed], context.DnsEndPoint.Port, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
