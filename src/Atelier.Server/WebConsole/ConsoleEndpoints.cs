using System.Collections.Frozen;
using System.Reflection;
using Atelier.Storage;
using Microsoft.Net.Http.Headers;

namespace Atelier.Server.WebConsole;

/// <summary>
/// The web console at <c>/console</c>: a page rendered with Razor components (static server-side rendering) and plain
/// ES modules and CSS, embedded in this assembly so they are served the same from a test host, <c>dotnet run</c> and a
/// published build. The scripts call the public API (<c>/api/v1</c>) with the credential the person signs in with;
/// nothing here reads or holds a credential.
/// </summary>
public static class ConsoleEndpoints
{
    public const string Path = "/console";

    /// <summary>No inline script or style, nothing from another origin, never framed.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; " +
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>
    /// <see cref="ContentSecurityPolicy"/>, where the console may also connect to the S3 store's origin: presigned
    /// uploads go from the browser straight to the bucket (path style: the service URL's origin; virtual-hosted: its
    /// bucket host too).
    /// </summary>
    public static string PolicyFor(StorageOptions storage)
    {
        if (!string.Equals(storage.Provider, "s3", StringComparison.OrdinalIgnoreCase) || !Uri.TryCreate(storage.S3ServiceUrl, UriKind.Absolute, out var service))
        {
            return ContentSecurityPolicy;
        }

        var origin = service.GetLeftPart(UriPartial.Authority);
        var extra = storage.S3ForcePathStyle ? origin : $"{origin} {service.Scheme}://{storage.S3Bucket}.{service.Authority}";
        return ContentSecurityPolicy.Replace("connect-src 'self'", "connect-src 'self' " + extra, StringComparison.Ordinal);
    }

    /// <summary>The headers of our own pages (the console's and the studio's): the content security policy, never framed, no referrer.</summary>
    public static void SecurePage(HttpResponse response, string cacheControl, string policy = ContentSecurityPolicy)
    {
        var h = response.Headers;
        h.ContentSecurityPolicy = policy;
        h.XFrameOptions = "DENY";
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        h.CacheControl = cacheControl;
    }

    private static readonly FrozenDictionary<string, (byte[] Bytes, string Type, string ETag)> Assets = LoadAssets();

    public static IServiceCollection AddAtelierConsole(this IServiceCollection services)
    {
        services.AddRazorComponents();
        return services;
    }

    public static WebApplication MapAtelierConsole(this WebApplication app)
    {
        var policy = PolicyFor(app.Services.GetRequiredService<StorageOptions>());
        app.Use(async (http, next) =>
        {
            if (http.Request.Path.StartsWithSegments(Path, StringComparison.OrdinalIgnoreCase))
            {
                SecurePage(http.Response, "no-cache", policy);
            }

            await next(http);
        });
        app.MapGet(Path + "/assets/{name}", (string name, HttpContext http) =>
        {
            if (!Assets.TryGetValue(name, out var asset))
            {
                return Results.NotFound();
            }

            if (http.Request.Headers.IfNoneMatch.Contains(asset.ETag))
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }

            return Results.Bytes(asset.Bytes, asset.Type, entityTag: new EntityTagHeaderValue(asset.ETag));
        }).ExcludeFromDescription();
        // The console posts no form to the server (its scripts call the API with a bearer credential, never a cookie), so
        // there is nothing for antiforgery tokens to protect and no antiforgery middleware in the pipeline.
        app.MapRazorComponents<App>().DisableAntiforgery();
        return app;
    }

    private static FrozenDictionary<string, (byte[], string, string)> LoadAssets()
    {
        const string prefix = "console/";
        var assembly = Assembly.GetExecutingAssembly();
        var assets = new Dictionary<string, (byte[], string, string)>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.ToArray();
            var name = resource[prefix.Length..];
            var type = System.IO.Path.GetExtension(name) switch
            {
                ".js" => "text/javascript; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".svg" => "image/svg+xml",
                _ => "application/octet-stream",
            };
            assets[name] = (bytes, type, $"\"{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))[..16]}\"");
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }
}
