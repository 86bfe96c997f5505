using System.Text.RegularExpressions;
using Atelier.Core.Common;
using Atelier.Server.Errors;

namespace Atelier.Server.Hosting;

/// <summary>
/// Gives every request an id of ours (a client cannot choose the id that the envelope, the logs and the audit log
/// carry), returns it in the response header, and opens a logging scope so that every log line of the request carries
/// it. The caller's own <c>X-Request-Id</c>, when sane, is kept beside it (logs, audit log).
/// </summary>
internal sealed partial class RequestIdMiddleware(RequestDelegate next, ILogger<RequestIdMiddleware> logger, TimeProvider clock)
{
    public const string Header = "X-Request-Id";

    public async Task InvokeAsync(HttpContext http, RequestContext ctx)
    {
        var incoming = http.Request.Headers[Header].ToString();
        var id = Ids.New("req", clock);
        http.TraceIdentifier = id;
        ctx.RequestId = id;
        ctx.ClientRequestId = SaneId().IsMatch(incoming) ? incoming : null;
        ctx.English = ErrorResponses.HeaderLanguage(http.Request) is { } asked ? asked == Core.Tenancy.Languages.English : ErrorResponses.DefaultEnglish(http.RequestServices);
        // Set when the response starts: the exception handler clears headers set earlier.
        http.Response.OnStarting(() =>
        {
            http.Response.Headers[Header] = id;
            return Task.CompletedTask;
        });
        var scope = new Dictionary<string, object> { ["RequestId"] = id };
        if (ctx.ClientRequestId is { } client)
        {
            scope["ClientRequestId"] = client;
        }

        using (logger.BeginScope(scope))
        {
            await next(http);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{8,64}$")]
    private static partial Regex SaneId();
}
