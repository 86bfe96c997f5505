using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s.Autorest;

namespace Atelier.Runtime.Kubernetes;

/// <summary>
/// Turns the client's failures into <see cref="RuntimeException"/>s. Messages carry the API server's <c>Status.message</c>
/// and what we were doing, never the kube config, its token or a request header.
/// </summary>
internal static class KubeErrors
{
    public const string Unreachable = "KubeUnreachable";
    public const string Timeout = "KubeTimeout";
    public const string ConfigMissing = "KubeConfigMissing";
    public const string ConfigInvalid = "KubeConfigInvalid";

    /// <summary>The API server's Status body, as far as it is one: the real server answers plain text for a path it has no route for.</summary>
    public sealed record KubeStatus(int Code, string? Message, string? Reason, string? DetailsName);

    public static KubeStatus ReadStatus(HttpOperationException e)
    {
        var code = e.Response is null ? 0 : (int)e.Response.StatusCode;
        var content = e.Response?.Content;
        if (string.IsNullOrWhiteSpace(content))
        {
            return new KubeStatus(code, null, null, null);
        }

        try
        {
            if (JsonNode.Parse(content) is JsonObject status && status["kind"]?.GetValue<string>() == "Status")
            {
                return new KubeStatus(
                    code,
                    status["message"]?.GetValue<string>(),
                    status["reason"]?.GetValue<string>(),
                    status["details"]?["name"]?.GetValue<string>());
            }
        }
        catch (JsonException)
        {
            // Not JSON: a plain "404 page not found" from a server without the API group.
        }

        return new KubeStatus(code, content.Length > 200 ? content[..200] : content.Trim(), null, null);
    }

    /// <summary>
    /// A 404 that names the object means the object is absent; one that does not (or is not a Status at all) means the
    /// path itself is unknown: the API group, here Knative Serving, is not installed.
    /// </summary>
    public static bool IsAbsent(HttpOperationException e) =>
        e.Response?.StatusCode == HttpStatusCode.NotFound && ReadStatus(e).DetailsName is not null;

    public static bool IsStatus(HttpOperationException e, HttpStatusCode code) => e.Response?.StatusCode == code;

    /// <summary>
    /// Maps an API server answer. On a custom resource (Knative Service, DomainMapping), a missing API group (404 without
    /// a name), a validation refusal (422) and a conflict that did not resolve (409) are <see cref="CustomResourceException"/>;
    /// everything else is a plain <see cref="RuntimeException"/>. The code is <c>Kube{status}</c> either way.
    /// </summary>
    public static RuntimeException Map(HttpOperationException e, string what, bool customResource)
    {
        var status = ReadStatus(e);
        var code = "Kube" + status.Code.ToString(CultureInfo.InvariantCulture);
        var said = status.Message is null ? "" : ": " + status.Message;
        if (customResource && status.Code == 404 && status.DetailsName is null)
        {
            return new CustomResourceException(code, $"{what}: the API server has no such resource type (is Knative Serving installed?){said}", e);
        }

        if (customResource && status.Code is 422 or 409)
        {
            return new CustomResourceException(code, $"{what}: the API server answered {status.Code} {status.Reason}{said}", e);
        }

        return new RuntimeException(code, $"{what}: the API server answered {status.Code} {status.Reason}{said}", e);
    }

    /// <summary>Maps any failure of a call; a cancellation of our own passes through.</summary>
    public static Exception Map(Exception e, string what, bool customResource, CancellationToken ct) => e switch
    {
        RuntimeException => e,
        HttpOperationException http => Map(http, what, customResource),
        HttpRequestException request => new RuntimeException(Unreachable, $"{what}: the API server could not be reached ({request.HttpRequestError})", e),
        OperationCanceledException when !ct.IsCancellationRequested => new RuntimeException(Timeout, $"{what}: the API server did not answer in time", e),
        _ => e,
    };
}
