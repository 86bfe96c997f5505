using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

namespace Atelier.Runtime;

/// <summary>
/// Sends one request to one instance with YARP's forwarder: the path below the function's prefix and the query go
/// to the instance, the caller's credentials do not (an instance is the tenant's code and never sees a platform
/// secret). The response streams back as it comes.
/// </summary>
public sealed class FunctionForwarder(IHttpForwarder forwarder) : IDisposable
{
    /// <summary>Headers that carry a platform credential or our routing and never reach an instance.</summary>
    private static readonly string[] Stripped = ["Authorization", "Cookie", "X-Tenant-Id", "X-Operator-Id", "X-Atelier-Invocation-Type"];

    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false, AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, UseCookies = false,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = TimeSpan.FromSeconds(15), PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
    });

    /// <summary>
    /// Forwards the current request to <paramref name="lease"/>'s instance at <paramref name="path"/>; answers the
    /// forwarder's error (<see cref="ForwarderError.None"/> when the response was relayed).
    /// </summary>
    public async Task<ForwarderError> ForwardAsync(HttpContext context, IInstanceLease lease, string path, TimeSpan timeout, string requestId)
    {
        var config = new ForwarderRequestConfig { ActivityTimeout = timeout };
        var transformer = new PathTransformer(path, requestId);
        var error = await forwarder.SendAsync(context, lease.Destination.GetLeftPart(UriPartial.Authority), _client, config, transformer);
        if (error is ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.ResponseHeaders)
        {
            lease.ReportFailure();
        }

        return error;
    }

    public void Dispose() => _client.Dispose();

    private sealed class PathTransformer(string path, string requestId) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            proxyRequest.RequestUri = RequestUtilities.MakeDestinationAddress(destinationPrefix, new PathString(path), httpContext.Request.QueryString);
            foreach (var header in Stripped)
            {
                proxyRequest.Headers.Remove(header);
            }

            proxyRequest.Headers.TryAddWithoutValidation("X-Atelier-Request-Id", requestId);
            // The instance sees its own address as the host, as a direct call would.
            proxyRequest.Headers.Host = null;
        }
    }
}
