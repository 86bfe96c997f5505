using System.Net;
using System.Net.Sockets;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Safety;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Security;

/// <summary>
/// Tests a URL a tenant is about to save (a webhook, a moderation endpoint): its DNS name resolves to addresses
/// Atelier may call (never private, loopback or link-local ones), it accepts a connection on one of them, TLS
/// verifies for https, and it answers HTTP within the timeout. Redirects are not followed (their status counts as an
/// answer). A failure is <c>b_user_urlconntestfailed</c> with the step that failed in <c>errCode</c>
/// (<c>url</c>, <c>dns</c>, <c>address</c>, <c>connect</c>, <c>tls</c>, <c>timeout</c>, <c>http</c>).
/// </summary>
public sealed class UrlTester(IOptions<UrlTestOptions> options, TimeProvider clock)
{
    public async Task<UrlTestResult> TestAsync(UrlTestRequest req, CancellationToken ct)
    {
        var o = options.Value;
        string url;
        try
        {
            url = AddressGuard.CheckUrlAtRequest(req.Url ?? "", o.AllowPrivateNetworks);
        }
        catch (AtelierException e)
        {
            throw Failed(ErrCodes.Url, e.Code == ErrorCatalog.p_model_invokemodeldownloaderror ? e.Values.GetValueOrDefault("Reason") ?? "not a usable URL" : "not a usable URL");
        }

        var uri = new Uri(url);
        var started = clock.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(Math.Clamp(o.TimeoutSeconds, 1, 60)));

        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(uri.IdnHost, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(uri.IdnHost, timeout.Token);
        }
        catch (SocketException e)
        {
            throw Failed(ErrCodes.Dns, $"{uri.IdnHost} does not resolve: {e.SocketErrorCode}");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Failed(ErrCodes.Timeout, $"resolving {uri.IdnHost} took longer than {o.TimeoutSeconds} s");
        }

        var usable = addresses.Where(a => o.AllowPrivateNetworks || !AddressGuard.IsDenied(a)).ToArray();
        if (usable.Length == 0)
        {
            throw Failed(ErrCodes.Address, $"{uri.IdnHost} resolves only to private, loopback or reserved addresses ({string.Join(", ", addresses.Take(3))})");
        }

        // The request goes to the addresses checked here and nowhere else (no second resolution to be rebound).
        using var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            ConnectCallback = async (context, token) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(usable, context.DnsEndPoint.Port, token);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        using var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Head, uri);
            request.Headers.UserAgent.ParseAdd("Atelier-UrlTest/1");
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            return new UrlTestResult(url, true, [.. usable.Select(a => a.ToString())], uri.Scheme == "https", (int)response.StatusCode, Math.Round(clock.GetElapsedTime(started).TotalMilliseconds, 1));
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw Failed(ErrCodes.Timeout, $"no HTTP answer from {uri.IdnHost} within {o.TimeoutSeconds} s");
        }
        catch (HttpRequestException e)
        {
            var step = e.HttpRequestError switch
            {
                HttpRequestError.SecureConnectionError => ErrCodes.Tls,
                HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError => ErrCodes.Connect,
                _ => e.InnerException is System.Security.Authentication.AuthenticationException ? ErrCodes.Tls : ErrCodes.Http,
            };
            throw Failed(step, $"{uri.IdnHost}: {e.Message}");
        }
    }

    private static AtelierException Failed(string step, string message) =>
        new(ErrorCatalog.b_user_urlconntestfailed, errCode: step, errMessage: message);
}

