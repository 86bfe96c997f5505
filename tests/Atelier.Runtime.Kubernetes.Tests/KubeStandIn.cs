using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Atelier.Runtime.Kubernetes.Tests;

/// <summary>
/// An in-process stand-in for a Kubernetes API server with Knative Serving installed, implementing exactly the paths the
/// kubernetes backend calls, with the real server's semantics: resourceVersion (a global counter), uid,
/// creationTimestamp and generation; 201/409 AlreadyExists on create; 409 Conflict on a stale resourceVersion; 404 Status
/// with details naming a missing object; 404 without details for an API group that is not installed; 422 Invalid for
/// objects Knative's webhook or the API server would refuse; list with equality label selectors; bearer token auth (401).
/// What Knative's controllers do is done synchronously on write: a revision per template name, and the Service's status
/// (conditions, url, traffic urls per tag, latestCreatedRevisionName).
/// </summary>
public sealed partial class KubeStandIn : IAsyncDisposable
{
    private const string Knative = "serving.knative.dev";

    private readonly WebApplication _app;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Type, string Namespace, string Name), JsonObject> _objects = [];
    private readonly List<Fault> _faults = [];
    private readonly List<string> _requests = [];
    private long _resourceVersion = 1000;
    private int _revisionCounter;

    private sealed class Fault(string method, string pathPrefix, int status, string message, int times)
    {
        public string Method { get; } = method;
        public string PathPrefix { get; } = pathPrefix;
        public int Status { get; } = status;
        public string Message { get; } = message;
        public int Times { get; set; } = times;
    }

    private KubeStandIn(WebApplication app) => _app = app;

    public string Token { get; } = "standin-" + Guid.NewGuid().ToString("N");

    public Uri Address { get; private set; } = null!;

    /// <summary>When false, every path under serving.knative.dev answers 404 like a cluster without Knative Serving.</summary>
    public bool KnativeInstalled { get; set; } = true;

    /// <summary>The Ready condition the simulated Knative sets on every Service write ("True", "False" or "Unknown").</summary>
    public string ReadyStatus { get; set; } = "True";

    public string? ReadyReason { get; set; }

    public string? ReadyMessage { get; set; }

    /// <summary>Every request as "METHOD path" (no query), in order.</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_lock)
            {
                return [.. _requests];
            }
        }
    }

    public static async Task<KubeStandIn> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var standIn = new KubeStandIn(app);
        app.Run(standIn.HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        standIn.Address = new Uri(address);
        return standIn;
    }

    /// <summary>A kube config for the stand-in: its address, the namespace and a bearer token (the right one unless told otherwise).</summary>
    public string KubeConfig(string? token = null, string ns = "atelier") => $"""
        apiVersion: v1
        kind: Config
        clusters:
        - name: standin
          cluster:
            server: {Address.ToString().TrimEnd('/')}
        users:
        - name: tester
          user:
            token: {token ?? Token}
        contexts:
        - name: standin
          context:
            cluster: standin
            user: tester
            namespace: {ns}
        current-context: standin
        """;

    /// <summary>The next <paramref name="times"/> requests with this method and path prefix answer <paramref name="status"/> with a Status carrying <paramref name="message"/>.</summary>
    public void FailNext(string method, string pathPrefix, int status, string message, int times = 1)
    {
        lock (_lock)
        {
            _faults.Add(new Fault(method, pathPrefix, status, message, times));
        }
    }

    /// <summary>A stored object as JSON (a copy), or null.</summary>
    public JsonObject? Get(string plural, string name, string ns = "atelier")
    {
        lock (_lock)
        {
            return _objects.TryGetValue((plural, ns, name), out var obj) ? obj.DeepClone().AsObject() : null;
        }
    }

    public IReadOnlyList<string> Names(string plural, string ns = "atelier")
    {
        lock (_lock)
        {
            return [.. _objects.Keys.Where(k => k.Type == plural && k.Namespace == ns).Select(k => k.Name).Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>Sets a stored Service's Ready condition, as Knative's controller would when its revision becomes ready or fails.</summary>
    public void SetReady(string name, string status, string? reason = null, string? message = null, string ns = "atelier")
    {
        lock (_lock)
        {
            var service = _objects[("services", ns, name)];
            service["status"]!["conditions"] = Conditions(status, reason, message);
        }
    }

    /// <summary>Sets the replica counts of a stored revision, as the autoscaler would.</summary>
    public void SetReplicas(string revision, int desired, int actual, string ns = "atelier")
    {
        lock (_lock)
        {
            var status = _objects[("revisions", ns, revision)]["status"]!.AsObject();
            status["desiredReplicas"] = desired;
            status["actualReplicas"] = actual;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static readonly Dictionary<(string Group, string Version, string Plural), string> Kinds = new()
    {
        [("", "v1", "secrets")] = "Secret",
        [(Knative, "v1", "services")] = "Service",
        [(Knative, "v1", "revisions")] = "Revision",
        [(Knative, "v1beta1", "domainmappings")] = "DomainMapping",
        [("sources.knative.dev", "v1", "pingsources")] = "PingSource",
        [("apps", "v1", "deployments")] = "Deployment",
    };

    [GeneratedRegex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex Dns1035();

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var path = request.Path.Value ?? "/";
        lock (_lock)
        {
            _requests.Add($"{request.Method} {path}");
        }

        if (request.Headers.Authorization.ToString() != $"Bearer {Token}")
        {
            await WriteAsync(context, 401, StatusBody(401, "Unauthorized", "Unauthorized", null, null));
            return;
        }

        Fault? fault;
        lock (_lock)
        {
            fault = _faults.FirstOrDefault(f => f.Method == request.Method && path.StartsWith(f.PathPrefix, StringComparison.Ordinal));
            if (fault is not null && --fault.Times == 0)
            {
                _faults.Remove(fault);
            }
        }

        if (fault is not null)
        {
            var reason = fault.Status switch { 403 => "Forbidden", 404 => "NotFound", 409 => "Conflict", 422 => "Invalid", _ => "InternalError" };
            await WriteAsync(context, fault.Status, StatusBody(fault.Status, reason, fault.Message, null, null));
            return;
        }

        var segments = path.Trim('/').Split('/');
        string group, version, ns, plural;
        string? name;
        if (segments is ["api", "v1", "namespaces", _, _, ..] && segments.Length <= 6)
        {
            (group, version, ns, plural, name) = ("", "v1", segments[3], segments[4], segments.Length == 6 ? segments[5] : null);
        }
        else if (segments is ["apis", "apps", "v1", "namespaces", _, "deployments", _, "scale"])
        {
            await ScaleAsync(context, segments[4], segments[6]);
            return;
        }
        else if (segments is ["apis", _, _, "namespaces", _, _, ..] && segments.Length <= 7)
        {
            (group, version, ns, plural, name) = (segments[1], segments[2], segments[4], segments[5], segments.Length == 7 ? segments[6] : null);
        }
        else
        {
            await WriteAsync(context, 404, StatusBody(404, "NotFound", "the server could not find the requested resource", null, null));
            return;
        }

        if (!Kinds.TryGetValue((group, version, plural), out var kind) || (group == Knative && !KnativeInstalled))
        {
            await WriteAsync(context, 404, StatusBody(404, "NotFound", "the server could not find the requested resource", null, null));
            return;
        }

        JsonObject? body = null;
        if (request.Method is "POST" or "PUT")
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            body = JsonNode.Parse(await reader.ReadToEndAsync()) as JsonObject;
        }

        int code;
        JsonObject answer;
        lock (_lock)
        {
            try
            {
                (code, answer) = (request.Method, name) switch
                {
                    ("GET", null) => List(group, version, plural, kind, ns, request.Query["labelSelector"].ToString()),
                    ("GET", string n) => Read(group, plural, kind, ns, n),
                    ("POST", null) => Create(group, version, plural, kind, ns, body),
                    ("PUT", string n) => Replace(group, version, plural, kind, ns, n, body),
                    ("DELETE", string n) => Delete(group, plural, kind, ns, n),
                    _ => (405, StatusBody(405, "MethodNotAllowed", $"{request.Method} is not supported here", null, null)),
                };
                answer = answer.DeepClone().AsObject();
            }
            catch (Exception e)
            {
                // A bug in the stand-in, not a server answer: said plainly so the failing test shows it.
                (code, answer) = (500, StatusBody(500, "InternalError", "stand-in failure: " + e, null, null));
            }
        }

        await WriteAsync(context, code, answer);
    }

    /// <summary>
    /// The Deployment scale subresource (autoscaling/v1 Scale): GET reads it, PATCH (merge patch) and PUT set
    /// <c>spec.replicas</c>; the simulated controller makes every asked replica ready at once.
    /// </summary>
    private async Task ScaleAsync(HttpContext context, string ns, string name)
    {
        JsonObject? body = null;
        if (context.Request.Method is "PATCH" or "PUT")
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            body = JsonNode.Parse(await reader.ReadToEndAsync()) as JsonObject;
        }

        int code;
        JsonObject answer;
        lock (_lock)
        {
            if (!_objects.TryGetValue(("deployments", ns, name), out var deployment))
            {
                (code, answer) = NotFound("apps", "deployments", "Deployment", name);
            }
            else if (context.Request.Method is "PATCH" or "PUT" && body?["spec"]?["replicas"] is not JsonValue wanted)
            {
                (code, answer) = Invalid("autoscaling", "Scale", name, "spec.replicas: Required value");
            }
            else if (context.Request.Method is not ("GET" or "PATCH" or "PUT"))
            {
                (code, answer) = (405, StatusBody(405, "MethodNotAllowed", $"{context.Request.Method} is not supported here", null, null));
            }
            else
            {
                if (body is not null)
                {
                    var replicas = body["spec"]!["replicas"]!.GetValue<int>();
                    if (replicas < 0)
                    {
                        (code, answer) = Invalid("autoscaling", "Scale", name, "spec.replicas: Invalid value: must be greater than or equal to 0");
                        goto written;
                    }

                    deployment["spec"]!["replicas"] = replicas;
                    deployment["metadata"]!["generation"] = deployment["metadata"]!["generation"]!.GetValue<long>() + 1;
                    deployment["metadata"]!["resourceVersion"] = Invariant(++_resourceVersion);
                    SimulateDeployment(deployment);
                }

                var spec = deployment["spec"]!["replicas"]!.GetValue<int>();
                (code, answer) = (200, new JsonObject
                {
                    ["kind"] = "Scale",
                    ["apiVersion"] = "autoscaling/v1",
                    ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["resourceVersion"] = deployment["metadata"]!["resourceVersion"]!.DeepClone() },
                    ["spec"] = new JsonObject { ["replicas"] = spec },
                    ["status"] = new JsonObject { ["replicas"] = spec, ["selector"] = $"atelier.dev/workload={name}" },
                });
            }

            written:
            answer = answer.DeepClone().AsObject();
        }

        await WriteAsync(context, code, answer);
    }

    /// <summary>What the Deployment controller reports: with no scheduler or kubelet to wait for, every replica is ready.</summary>
    private static void SimulateDeployment(JsonObject deployment)
    {
        var replicas = deployment["spec"]?["replicas"]?.GetValue<int>() ?? 1;
        deployment["status"] = new JsonObject
        {
            ["observedGeneration"] = deployment["metadata"]!["generation"]!.DeepClone(),
            ["replicas"] = replicas,
            ["readyReplicas"] = replicas,
            ["availableReplicas"] = replicas,
            ["updatedReplicas"] = replicas,
        };
    }

    private (int, JsonObject) List(string group, string version, string plural, string kind, string ns, string selector)
    {
        var wanted = selector.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Split('=', 2)).ToList();
        var items = new JsonArray();
        foreach (var ((type, itemNs, _), obj) in _objects.OrderBy(o => o.Key.Name, StringComparer.Ordinal))
        {
            if (type != plural || itemNs != ns)
            {
                continue;
            }

            var labels = obj["metadata"]?["labels"];
            if (wanted.All(w => w.Length == 2 && labels?[w[0]]?.GetValue<string>() == w[1]))
            {
                items.Add(obj.DeepClone());
            }
        }

        return (200, new JsonObject
        {
            ["kind"] = kind + "List",
            ["apiVersion"] = group.Length == 0 ? version : $"{group}/{version}",
            ["metadata"] = new JsonObject { ["resourceVersion"] = Invariant(_resourceVersion) },
            ["items"] = items,
        });
    }

    private (int, JsonObject) Read(string group, string plural, string kind, string ns, string name) =>
        _objects.TryGetValue((plural, ns, name), out var obj) ? (200, obj) : NotFound(group, plural, kind, name);

    private (int, JsonObject) Create(string group, string version, string plural, string kind, string ns, JsonObject? body)
    {
        var name = body?["metadata"]?["name"]?.GetValue<string>();
        if (body is null || name is null || !Dns1035().IsMatch(name) && plural != "domainmappings" && plural != "secrets")
        {
            return Invalid(group, kind, name, $"metadata.name: Invalid value: \"{name}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-'");
        }

        if (_objects.ContainsKey((plural, ns, name)))
        {
            return (409, StatusBody(409, "AlreadyExists", $"{plural}{GroupSuffix(group)} \"{name}\" already exists", name, Details(group, kind)));
        }

        var invalid = Validate(plural, body);
        if (invalid is not null)
        {
            return Invalid(group, kind, name, invalid);
        }

        var metadata = body["metadata"]!.AsObject();
        metadata["namespace"] = ns;
        metadata["uid"] = Guid.NewGuid().ToString();
        metadata["creationTimestamp"] = "2026-01-01T00:00:00Z";
        metadata["generation"] = 1L;
        metadata["resourceVersion"] = Invariant(++_resourceVersion);
        body["apiVersion"] = group.Length == 0 ? version : $"{group}/{version}";
        body["kind"] = kind;
        body.Remove("status");
        var simulated = Simulate(plural, ns, name, body, null);
        if (simulated is not null)
        {
            return Invalid(group, kind, name, simulated);
        }

        _objects[(plural, ns, name)] = body;
        return (201, body);
    }

    private (int, JsonObject) Replace(string group, string version, string plural, string kind, string ns, string name, JsonObject? body)
    {
        if (!_objects.TryGetValue((plural, ns, name), out var stored))
        {
            return NotFound(group, plural, kind, name);
        }

        if (body?["metadata"]?["name"]?.GetValue<string>() != name)
        {
            return Invalid(group, kind, name, "metadata.name: Invalid value: the name of the object does not match the name on the URL");
        }

        var version0 = body["metadata"]?["resourceVersion"]?.GetValue<string>();
        if (string.IsNullOrEmpty(version0))
        {
            return Invalid(group, kind, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update");
        }

        if (version0 != stored["metadata"]!["resourceVersion"]!.GetValue<string>())
        {
            return (409, StatusBody(409, "Conflict",
                $"Operation cannot be fulfilled on {plural}{GroupSuffix(group)} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                name, Details(group, kind)));
        }

        var invalid = Validate(plural, body);
        if (invalid is not null)
        {
            return Invalid(group, kind, name, invalid);
        }

        var metadata = body["metadata"]!.AsObject();
        var old = stored["metadata"]!;
        metadata["namespace"] = ns;
        metadata["uid"] = old["uid"]!.DeepClone();
        metadata["creationTimestamp"] = old["creationTimestamp"]!.DeepClone();
        var specChanged = !JsonNode.DeepEquals(body["spec"], stored["spec"]) || !JsonNode.DeepEquals(body["data"], stored["data"]);
        metadata["generation"] = old["generation"]!.GetValue<long>() + (specChanged ? 1 : 0);
        metadata["resourceVersion"] = Invariant(++_resourceVersion);
        body["apiVersion"] = group.Length == 0 ? version : $"{group}/{version}";
        body["kind"] = kind;

        // Status is a subresource: a write to the object itself keeps the stored status.
        body["status"] = stored["status"]?.DeepClone();
        if (body["status"] is null)
        {
            body.Remove("status");
        }

        var simulated = Simulate(plural, ns, name, body, stored);
        if (simulated is not null)
        {
            return Invalid(group, kind, name, simulated);
        }

        _objects[(plural, ns, name)] = body;
        return (200, body);
    }

    private (int, JsonObject) Delete(string group, string plural, string kind, string ns, string name)
    {
        if (!_objects.Remove((plural, ns, name)))
        {
            return NotFound(group, plural, kind, name);
        }

        if (plural == "services")
        {
            // Owner references: the garbage collector removes the Service's revisions.
            foreach (var key in _objects.Keys.Where(k => k.Type == "revisions" && k.Namespace == ns &&
                _objects[k]["metadata"]?["labels"]?["serving.knative.dev/service"]?.GetValue<string>() == name).ToList())
            {
                _objects.Remove(key);
            }
        }

        return (200, new JsonObject { ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Success", ["details"] = new JsonObject { ["name"] = name, ["kind"] = plural } });
    }

    /// <summary>What the API server's schema or Knative's webhook would refuse.</summary>
    private static string? Validate(string plural, JsonObject body)
    {
        switch (plural)
        {
            case "services":
                var template = body["spec"]?["template"];
                if (string.IsNullOrEmpty(template?["spec"]?["containers"]?[0]?["image"]?.GetValue<string>()))
                {
                    return "missing field(s): spec.template.spec.containers[0].image";
                }

                var templateName = template["metadata"]?["name"]?.GetValue<string>();
                var service = body["metadata"]!["name"]!.GetValue<string>();
                if (templateName is not null && (!templateName.StartsWith(service + "-", StringComparison.Ordinal) || !Dns1035().IsMatch(templateName)))
                {
                    return $"invalid value: {templateName}: spec.template.metadata.name: must have prefix \"{service}-\" and be a DNS-1035 label";
                }

                var traffic = body["spec"]?["traffic"]?.AsArray();
                if (traffic is not null)
                {
                    if (traffic.Sum(t => t?["percent"]?.GetValue<int>() ?? 0) != 100)
                    {
                        return "spec.traffic: Invalid value: traffic targets sum to a value not equal to 100";
                    }

                    var tags = traffic.Select(t => t?["tag"]?.GetValue<string>()).Where(t => t is not null).ToList();
                    if (tags.Count != tags.Distinct(StringComparer.Ordinal).Count())
                    {
                        return "spec.traffic: Invalid value: multiple definitions for a tag";
                    }

                    if (traffic.Any(t => t?["latestRevision"]?.GetValue<bool>() == true && t["revisionName"] is not null))
                    {
                        return "spec.traffic: expected exactly one, got both: revisionName, latestRevision";
                    }
                }

                return null;
            case "deployments":
                var podLabels = body["spec"]?["template"]?["metadata"]?["labels"]?.AsObject();
                var selector = body["spec"]?["selector"]?["matchLabels"]?.AsObject();
                if (string.IsNullOrEmpty(body["spec"]?["template"]?["spec"]?["containers"]?[0]?["image"]?.GetValue<string>()))
                {
                    return "spec.template.spec.containers[0].image: Required value";
                }

                return selector is null || selector.Any(kv => podLabels?[kv.Key]?.GetValue<string>() != kv.Value?.GetValue<string>())
                    ? "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
                    : null;
            case "domainmappings":
                return string.IsNullOrEmpty(body["spec"]?["ref"]?["name"]?.GetValue<string>()) ? "missing field(s): spec.ref.name" : null;
            case "secrets":
                return body["type"]?.GetValue<string>() == "kubernetes.io/tls" && (body["data"]?["tls.crt"] is null || body["data"]?["tls.key"] is null)
                    ? "data[tls.crt]: Required value; data[tls.key]: Required value"
                    : null;
            default:
                return null;
        }
    }

    /// <summary>What Knative's controllers do after a Service write: make the template's revision, then set the status. Returns a webhook refusal, or null.</summary>
    private string? Simulate(string plural, string ns, string name, JsonObject body, JsonObject? stored)
    {
        if (plural == "domainmappings")
        {
            body["status"] = new JsonObject { ["url"] = $"https://{name}", ["conditions"] = Conditions("True", null, null) };
            return null;
        }

        if (plural == "deployments")
        {
            SimulateDeployment(body);
            return null;
        }

        if (plural == "secrets" && body["stringData"] is JsonObject plain)
        {
            // The API server folds stringData into data (base64) and never stores or returns stringData.
            var data = body["data"] as JsonObject ?? new JsonObject();
            foreach (var (key, value) in plain)
            {
                data[key] = Convert.ToBase64String(Encoding.UTF8.GetBytes(value?.GetValue<string>() ?? ""));
            }

            body["data"] = data;
            body.Remove("stringData");
            return null;
        }

        if (plural != "services")
        {
            return null;
        }

        var template = body["spec"]!["template"]!.AsObject();
        var templateName = template["metadata"]?["name"]?.GetValue<string>();
        var previous = stored?["status"]?["latestCreatedRevisionName"]?.GetValue<string>();
        var unchanged = stored is not null && JsonNode.DeepEquals(stored["spec"]?["template"], template);
        var revisionName = templateName ?? (unchanged && previous is not null ? previous : $"{name}-{Invariant(++_revisionCounter).PadLeft(5, '0')}");
        if (_objects.TryGetValue(("revisions", ns, revisionName), out var existing))
        {
            if (!JsonNode.DeepEquals(existing["spec"]?["template"], template))
            {
                return $"Saw the following changes without a name change (-old +new): spec.template (revision {revisionName} exists)";
            }
        }
        else
        {
            var annotations = template["metadata"]?["annotations"];
            var minScale = int.TryParse(annotations?["autoscaling.knative.dev/min-scale"]?.GetValue<string>(), NumberStyles.None, CultureInfo.InvariantCulture, out var m) ? m : 0;
            _objects[("revisions", ns, revisionName)] = new JsonObject
            {
                ["apiVersion"] = $"{Knative}/v1",
                ["kind"] = "Revision",
                ["metadata"] = new JsonObject
                {
                    ["name"] = revisionName,
                    ["namespace"] = ns,
                    ["uid"] = Guid.NewGuid().ToString(),
                    ["resourceVersion"] = Invariant(++_resourceVersion),
                    ["generation"] = 1L,
                    ["labels"] = new JsonObject { ["serving.knative.dev/service"] = name },
                    ["annotations"] = annotations?.DeepClone(),
                },
                ["spec"] = new JsonObject { ["template"] = template.DeepClone() },
                ["status"] = new JsonObject
                {
                    ["conditions"] = Conditions("True", null, null),
                    ["desiredReplicas"] = Math.Max(minScale, 1),
                    ["actualReplicas"] = Math.Max(minScale, 1),
                },
            };
        }

        var (status, reason, message) = (ReadyStatus, ReadyReason, ReadyMessage);
        var traffic = new JsonArray();
        foreach (var entry in body["spec"]!["traffic"]?.AsArray() ?? [new JsonObject { ["latestRevision"] = true, ["percent"] = 100 }])
        {
            var target = entry!["revisionName"]?.GetValue<string>() ?? revisionName;
            if (!_objects.ContainsKey(("revisions", ns, target)) && status == "True")
            {
                (status, reason, message) = ("False", "RevisionMissing", $"Configuration \"{name}\" referenced in traffic not found: revision {target}");
            }

            var resolved = new JsonObject
            {
                ["revisionName"] = target,
                ["latestRevision"] = entry["latestRevision"]?.GetValue<bool>() ?? false,
                ["percent"] = entry["percent"]?.GetValue<int>() ?? 0,
            };
            var tag = entry["tag"]?.GetValue<string>();
            if (tag is not null)
            {
                resolved["tag"] = tag;
                resolved["url"] = $"http://{tag}-{name}.{ns}.example.com";
            }

            traffic.Add(resolved);
        }

        body["status"] = new JsonObject
        {
            ["observedGeneration"] = body["metadata"]!["generation"]!.DeepClone(),
            ["latestCreatedRevisionName"] = revisionName,
            ["latestReadyRevisionName"] = revisionName,
            ["url"] = $"http://{name}.{ns}.example.com",
            ["traffic"] = traffic,
            ["conditions"] = Conditions(status, reason, message),
        };
        return null;
    }

    private static JsonArray Conditions(string status, string? reason, string? message) =>
    [
        new JsonObject { ["type"] = "Ready", ["status"] = status, ["reason"] = reason, ["message"] = message },
        new JsonObject { ["type"] = "ConfigurationsReady", ["status"] = status },
        new JsonObject { ["type"] = "RoutesReady", ["status"] = status },
    ];

    private static (int, JsonObject) NotFound(string group, string plural, string kind, string name) =>
        (404, StatusBody(404, "NotFound", $"{plural}{GroupSuffix(group)} \"{name}\" not found", name, Details(group, kind)));

    private static (int, JsonObject) Invalid(string group, string kind, string? name, string message) =>
        (422, StatusBody(422, "Invalid", $"{kind} \"{name}\" is invalid: {message}", name, Details(group, kind)));

    private static JsonObject Details(string group, string kind) => new() { ["group"] = group, ["kind"] = kind.ToLowerInvariant() + "s" };

    private static string GroupSuffix(string group) => group.Length == 0 ? "" : "." + group;

    private static JsonObject StatusBody(int code, string reason, string message, string? name, JsonObject? details)
    {
        var status = new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        };
        if (details is not null)
        {
            details["name"] = name;
            status["details"] = details;
        }

        return status;
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static async Task WriteAsync(HttpContext context, int code, JsonObject body)
    {
        context.Response.StatusCode = code;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString());
    }
}
