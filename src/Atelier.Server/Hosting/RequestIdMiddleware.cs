using System.Text.RegularExpressions;
using Atelier.Core.Common;
using Atelier.Server.Errors;

namespace Atelier.Server.Hosting;

/// <summary>
/// Gives every request an id (the caller's <c>X-Request-Id</c> when it is sane, else a new one), returns it in the
/// response header, and opens a logging scope so that every log line of the request carries it.
/// </summary>
internal sealed partial class RequestIdMiddleware(RequestDelegate next, ILogger<RequestIdMiddleware> logger, TimeProvider clock)
{
    public const string Header = "X-Request-Id";

    public async Task InvokeAsync(HttpContext http, RequestContext ctx)
    {
        var incoming = http.Request.Headers[Header].ToString();
        var id = SaneId().IsMatch(incoming) ? incoming : Ids.New("req", clock);
        http.TraceIdentifier = id;
        ctx.RequestId = id;
        ctx.English = ErrorResponses.PrefersEnglish(http.Request);
        // Set when the response starts: the exception handler clears headers set earlier.
        http.Response.OnStarting(() =>
        {
            http.Response.Headers[Header] = id;
            return Task.CompletedTask;
        });
        using (logger.BeginScope(new Dictionary<string, object> { ["RequestId"] = id }))
        {
            await next(http);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{8,64}$")]
    private static partial Regex SaneId();
}
