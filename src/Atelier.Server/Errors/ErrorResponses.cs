using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Tenancy;
using Microsoft.Net.Http.Headers;

namespace Atelier.Server.Errors;

/// <summary>Writes the seed's error envelope. The exception handler and the status-code fallback both come here.</summary>
public static class ErrorResponses
{
    public static async Task WriteAsync(HttpContext http, AtelierException error)
    {
        var english = await EnglishAsync(http);
        var message = error.Code.Format(english, error.Values);
        var body = new ErrorEnvelope(
            http.TraceIdentifier,
            false,
            error.Code.Code,
            message,
            error.ErrCode,
            error.ErrMessage);
        if (IsA1111(http.Request.Path))
        {
            // AUTOMATIC1111's clients read detail (and error, errors); the envelope's fields stay beside them.
            var text = error.ErrMessage is { Length: > 0 } more && more != message ? $"{message} ({more})" : message;
            body = body with { Detail = text, Error = error.Code.Code, Errors = text };
        }

        http.Response.StatusCode = error.Status;
        if (error.RetryAfterSeconds is { } retry)
        {
            http.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        http.Response.Headers.CacheControl = "no-store";
        await http.Response.WriteAsJsonAsync(body, AtelierJson.Options, "application/json; charset=utf-8");
    }

    /// <summary>The routes of AUTOMATIC1111's API (<c>/sdapi/…</c>, <c>/internal/…</c>), whose errors also carry A1111's fields.</summary>
    public static bool IsA1111(PathString path) =>
        path.StartsWithSegments("/sdapi", StringComparison.OrdinalIgnoreCase) || path.StartsWithSegments("/internal", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The language of an error message: the caller's <c>Accept-Language</c> when it ranks English or Chinese; else its
    /// tenant's configured language; else the server's default (<c>Atelier:Server:DefaultLanguage</c>).
    /// </summary>
    public static async Task<bool> EnglishAsync(HttpContext http)
    {
        if (HeaderLanguage(http.Request) is { } asked)
        {
            return asked == Languages.English;
        }

        var services = http.RequestServices;
        // The tenant entered, or (refused before it was entered, as by a scope check) the credential's own.
        var ctx = services?.GetService<RequestContext>();
        if (services is not null && (ctx?.TenantId ?? ctx?.Caller?.TenantId) is { } tenant)
        {
            try
            {
                var language = await services.GetRequiredService<TenantLanguage>().OfAsync(tenant, http.RequestAborted);
                if (language is not null)
                {
                    return language == Languages.English;
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The error may be the database's own: the server's default then.
            }
        }

        return DefaultEnglish(services);
    }

    public static bool DefaultEnglish(IServiceProvider? services) =>
        services?.GetService<Hosting.ServerOptions>()?.DefaultLanguage == Languages.English;

    /// <summary><c>en</c> or <c>zh</c>, whichever the caller's <c>Accept-Language</c> ranks higher; null when it names neither.</summary>
    public static string? HeaderLanguage(HttpRequest request)
    {
        if (!StringWithQualityHeaderValue.TryParseList(request.Headers.AcceptLanguage, out var langs))
        {
            return null;
        }

        double en = -1, zh = -1;
        foreach (var l in langs)
        {
            var tag = l.Value.Value ?? "";
            var q = l.Quality ?? 1.0;
            if (tag.StartsWith("en", StringComparison.OrdinalIgnoreCase))
            {
                en = Math.Max(en, q);
            }
            else if (tag.StartsWith("zh", StringComparison.OrdinalIgnoreCase))
            {
                zh = Math.Max(zh, q);
            }
        }

        return en <= 0 && zh <= 0 ? null : en > zh ? Languages.English : Languages.Chinese;
    }
}
