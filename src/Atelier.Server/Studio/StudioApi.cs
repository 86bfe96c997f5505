using System.Net.Http.Headers;
using System.Reflection;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Core.Sessions;
using Atelier.Runtime;
using Atelier.Server.Auth;
using Atelier.Server.Endpoints;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Studio;

/// <summary>
/// The studio at <c>/studio/{sessionId}</c>: our own page for a session on shared compute (static files; the page reads
/// the session credential from the URL fragment, which no browser sends, and calls the public API with it), and for a
/// dedicated session (its resource config names a function template) the web UI of the session's own instance,
/// started at <c>POST /studio/{sessionId}/connect</c>, fetched through the router with the session injected, and
/// stopped by <see cref="StudioReaper"/> when the session ends.
/// </summary>
public static class StudioApi
{
    /// <summary>The cookie that carries a dedicated session's credential to its instance's UI (HttpOnly, SameSite=Strict, scoped to the session's path).</summary>
    public const string CookieName = "atelier_studio";

    /// <summary>What the instance is told about the session, on every request the studio sends it.</summary>
    public const string SessionHeader = "X-Atelier-Session-Id";

    private const int MaxHtmlBytes = 8 * 1024 * 1024;

    private static readonly Dictionary<string, string> Assets = new(StringComparer.Ordinal)
    {
        ["studio.js"] = "text/javascript; charset=utf-8",
        ["studio.css"] = "text/css; charset=utf-8",
    };

    public static IEndpointRouteBuilder MapStudio(this IEndpointRouteBuilder routes)
    {
        var studio = routes.MapGroup("/studio").WithTags("Studio").ExcludeFromDescription();
        studio.MapGet("/assets/{file}", Asset).WithName("StudioAsset");
        studio.MapGet("/{sessionId}", Page).WithName("Studio");
        studio.MapPost("/{sessionId}/connect", Connect).WithName("StudioConnect").RequireAccess(Access.Session);
        studio.Map("/{sessionId}/ui/{**path}", Ui).WithName("StudioUi");
        return routes;
    }

    /// <summary>The studio page: the same for every session (it learns everything from the API with the credential it is given).</summary>
    public static IResult Page(string sessionId, HttpContext http)
    {
        WebConsole.ConsoleEndpoints.SecurePage(http.Response, "no-store");
        return Results.Bytes(Read("studio.html"), "text/html; charset=utf-8");
    }

    public static IResult Asset(string file, HttpContext http)
    {
        if (!Assets.TryGetValue(file, out var type))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"file: no studio asset {file}" }, status: 404);
        }

        http.Response.Headers.XContentTypeOptions = "nosniff";
        http.Response.Headers.CacheControl = "no-cache";
        return Results.Bytes(Read(file), type);
    }

    private static byte[] Read(string file)
    {
        using var stream = typeof(StudioApi).Assembly.GetManifestResourceStream("studio/" + file)
                           ?? throw new InvalidOperationException($"studio asset {file} is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// A dedicated session's studio: starts its instance (once; a second call finds it) and hands the browser the
    /// session credential as a cookie that only <c>/studio/{sessionId}/</c> receives, since a page cannot put a header
    /// on its own navigation. Another session's id, or a session on shared compute, is refused.
    /// </summary>
    public static async Task<IResult> Connect(string sessionId, HttpContext http, FunctionManager functions, CancellationToken ct)
    {
        var routed = await functions.EnsureStudioFunctionAsync(sessionId, ct);
        http.Response.Cookies.Append(CookieName, AccessFilters.BearerOf(http.Request)!, new CookieOptions
        {
            HttpOnly = true, SameSite = SameSiteMode.Strict, Secure = http.Request.IsHttps, Path = $"/studio/{sessionId}/", IsEssential = true,
        });
        return Results.Json(new ApiResponse<object>(http.TraceIdentifier, true, new { sessionId, function = routed.Name, ui = $"/studio/{sessionId}/ui/" }));
    }

    /// <summary>
    /// The dedicated session's instance UI. The credential comes in the cookie set by <see cref="Connect"/> (checked as
    /// any session credential, so an ended or expired session is refused); the instance never sees it, nor any cookie
    /// or Authorization header, and it is told the session in <see cref="SessionHeader"/>. The page itself (a GET of
    /// the root) is fetched and checked to be HTML; when it cannot be (the instance down, or answering an error or
    /// something else than HTML) the answer is <c>b_html_htmlcontentgeterror</c>. Everything below it is relayed as it is.
    /// </summary>
    public static async Task Ui(HttpContext http, string sessionId, string? path)
    {
        var cookie = http.Request.Cookies[CookieName];
        if (http.Request.Headers.Authorization.Count == 0 && cookie is not null)
        {
            http.Request.Headers.Authorization = "Bearer " + cookie;
        }

        await AccessFilters.AuthorizeAsync(http, Access.Session);
        var services = http.RequestServices;
        var name = await services.GetRequiredService<FunctionManager>().StudioFunctionOfCallerAsync(sessionId, http.RequestAborted);
        var session = sessionId;
        var routing = services.GetRequiredService<FunctionRouting>();
        RoutedFunction routed;
        try
        {
            routed = await routing.FindAnyAsync(FunctionManager.StudioService, name, http.RequestAborted);
        }
        catch (AtelierException e) when (e.Status == 404)
        {
            throw HtmlError(ErrCodes.InstanceMissing, $"session {session} has no studio instance: open /studio/{session} to start it");
        }

        http.Request.Headers.Remove("Cookie");
        http.Request.Headers[SessionHeader] = session;
        var target = "/" + (path ?? "");
        if (target == "/" && (HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)))
        {
            await PageAsync(http, routing, routed, name, session);
            return;
        }

        await FunctionRouterApi.InvokeAsync(http, routed, name, target);
    }

    private static AtelierException HtmlError(string errCode, string message) =>
        new(ErrorCatalog.b_html_htmlcontentgeterror, errCode: errCode, errMessage: message);

    /// <summary>Fetches the instance's page and relays it when it is HTML.</summary>
    private static async Task PageAsync(HttpContext http, FunctionRouting routing, RoutedFunction routed, string name, string session)
    {
        var options = http.RequestServices.GetRequiredService<IOptions<SessionsOptions>>().Value;
        var ct = http.RequestAborted;
        IInstanceLease lease;
        try
        {
            var target = await routing.TargetAsync(routed, name, ct);
            lease = await target.Backend.AcquireAsync(target.Region, target.Key, target.Revision, TimeSpan.FromSeconds(options.StudioFetchTimeoutSeconds), ct);
        }
        catch (Exception e) when (e is RuntimeException or AtelierException)
        {
            throw HtmlError(ErrCodes.InstanceUnavailable, $"the studio instance of session {session} cannot be reached: {e.Message}");
        }

        using (lease)
        {
            using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, UseCookies = false })
            {
                Timeout = TimeSpan.FromSeconds(options.StudioFetchTimeoutSeconds),
                MaxResponseContentBufferSize = MaxHtmlBytes,
            };
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(lease.Destination, "/" + http.Request.QueryString));
            request.Headers.TryAddWithoutValidation(SessionHeader, session);
            request.Headers.TryAddWithoutValidation("X-Atelier-Request-Id", http.RequestServices.GetRequiredService<RequestContext>().RequestId);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/html"));
            byte[] html;
            string? type;
            try
            {
                using var response = await client.SendAsync(request, ct);
                type = response.Content.Headers.ContentType?.MediaType;
                if (!response.IsSuccessStatusCode)
                {
                    throw HtmlError(ErrCodes.HtmlStatus, $"the studio instance answered {(int)response.StatusCode} for its page");
                }

                if (!string.Equals(type, "text/html", StringComparison.OrdinalIgnoreCase))
                {
                    throw HtmlError(ErrCodes.HtmlType, $"the studio instance answered {type ?? "no content type"} for its page, not text/html");
                }

                html = await response.Content.ReadAsByteArrayAsync(ct);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                lease.ReportFailure();
                throw HtmlError(ErrCodes.InstanceUnreachable, $"the studio instance of session {session} did not answer: {e.GetType().Name}");
            }

            if (http.Features.Get<IStatusCodePagesFeature>() is { } pages)
            {
                pages.Enabled = false;
            }

            // The instance's page may frame itself and run its own scripts; it is still never framed by another site.
            http.Response.Headers.ContentSecurityPolicy = "frame-ancestors 'self'";
            http.Response.Headers.XContentTypeOptions = "nosniff";
            http.Response.Headers["Referrer-Policy"] = "no-referrer";
            http.Response.Headers.CacheControl = "no-store";
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.ContentLength = html.Length;
            if (!HttpMethods.IsHead(http.Request.Method))
            {
                await http.Response.Body.WriteAsync(html, ct);
            }
        }
    }
}
