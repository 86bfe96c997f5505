using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Microsoft.Net.Http.Headers;

namespace Atelier.Server.Errors;

/// <summary>Writes the seed's error envelope. The exception handler and the status-code fallback both come here.</summary>
public static class ErrorResponses
{
    public static Task WriteAsync(HttpContext http, AtelierException error)
    {
        var english = PrefersEnglish(http.Request);
        var body = new ErrorEnvelope(
            http.TraceIdentifier,
            false,
            error.Code.Code,
            error.Code.Format(english, error.Values),
            error.ErrCode,
            error.ErrMessage);
        http.Response.StatusCode = error.Status;
        if (error.RetryAfterSeconds is { } retry)
        {
            http.Response.Headers.RetryAfter = retry.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        http.Response.Headers.CacheControl = "no-store";
        return http.Response.WriteAsJsonAsync(body, AtelierJson.Options, "application/json; charset=utf-8");
    }

    /// <summary>Chinese (the seed's language) unless the caller ranks English above Chinese in <c>Accept-Language</c>.</summary>
    public static bool PrefersEnglish(HttpRequest request)
    {
        if (!StringWithQualityHeaderValue.TryParseList(request.Headers.AcceptLanguage, out var langs))
        {
            return false;
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
            else if (tag.StartsWith("zh", StringComparison.OrdinalIgnoreCase) || tag == "*")
            {
                zh = Math.Max(zh, q);
            }
        }

        return en > 0 && en > zh;
    }
}
