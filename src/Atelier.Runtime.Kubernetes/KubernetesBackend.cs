using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Atelier.Runtime.Kubernetes;

/// <summary>Timing of the kubernetes backend's waits.</summary>
public sealed record KubernetesBackendOptions
{
    /// <summary>How long ApplyAsync waits for Knative to create a revision and report the Service Ready.</summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How often it reads the Service while waiting.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Writes tried in all when the API server answers 409 Conflict (each after a fresh read).</summary>
    public int ConflictAttempts { get; init; } = 3;
}

/// <summary>
/// Functions as Knative Serving Services in the region's cluster (docs/kubernetes.md). Every call reads the current
/// object and writes the whole desired one with its resourceVersion, so calls are idempotent and a concurrent writer
/// makes us re-read, not overwrite.
/// </summary>
public sealed partial class KubernetesBackend(TimeProvider clock, ILogger<KubernetesBackend> logger, KubernetesBackendOptions? options = null)
    : IRuntimeBackend, IDisposable
{
    private readonly KubernetesBackendOptions _options = options ?? new KubernetesBackendOptions();

    /// <summary>Clients per region and kube config hash: a changed kube config gets a new client, the old one is dropped.</summary>
    private readonly ConcurrentDictionary<string, Lazy<k8s.Kubernetes>> _clients = new(StringComparer.Ordinal);

    public string Name => "kubernetes";

    public async Task ApplyAsync(RuntimeRegion region, FunctionSpec spec, CancellationToken ct)
    {
        KnativeMapping.Validate(spec);
        var client = Client(region);
        var what = $"apply function {spec.Key} in region {region.Name}";

        // Knative makes a revision only from the current template, so a published version whose revision is missing (it
        // was published before this cluster had the function, or the cluster was rebuilt) is first put in the template
        // under its own name, and we wait for Knative to create it, before the draft goes back in.
        foreach (var published in spec.Revisions.Where(r => r.Name != KnativeMapping.Latest))
        {
            var revisionName = KnativeMapping.PublishedRevisionName(spec.Key, published.Name);
            if (await GetAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Revisions, revisionName, what, ct) is not null)
            {
                continue;
            }

            Log.CreatingPublishedRevision(logger, spec.Key.Name, revisionName, region.Name);
            var template = KnativeMapping.Template(spec, published, TakesTraffic(spec, published.Name) ? spec.MinInstances : 0);
            template["metadata"]!["name"] = revisionName;
            var written = await UpsertAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, spec.Key.Name, what,
                current => Service(spec, current, template, current?["spec"]?["traffic"]?.DeepClone() as JsonArray), ct);
            await WaitAsync(client, region, spec.Key, Generation(written), what,
                service => service["status"]?["latestCreatedRevisionName"]?.GetValue<string>() == revisionName, ct);
        }

        var source = KnativeMapping.TemplateSource(spec);
        var final = await UpsertAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, spec.Key.Name, what, current =>
        {
            var manual = ManualScale(current);
            var minScale = manual > 0 ? manual : TakesTraffic(spec, source.Name) ? spec.MinInstances : 0;
            var template = KnativeMapping.Template(spec, source, minScale);
            KnativeMapping.NameTemplate(spec.Key, template);
            return Service(spec, current, template, KnativeMapping.Traffic(spec));
        }, ct);
        Log.Applied(logger, spec.Key.Name, final["spec"]?["template"]?["metadata"]?["name"]?.GetValue<string>(), region.Name);

        // Like the local backend, apply returns once what takes traffic is ready: Knative's initial scale of one starts
        // the new revision, and the Service is Ready when it and every route target are.
        await WaitAsync(client, region, spec.Key, Generation(final), what, service =>
        {
            var (status, reason, message) = ReadyCondition(service);
            return status switch
            {
                "True" => true,
                "False" => throw new RuntimeException(RuntimeErrors.NeverHealthy, $"{what}: Knative reports {reason}: {message}"),
                _ => false,
            };
        }, ct);
        await ApplyTimersAsync(client, region, spec, what, ct);
    }

    /// <summary>Knative Eventing fires timers here: one PingSource per timer, and none left for a timer that is gone.</summary>
    public bool SchedulesTimers => true;

    private async Task ApplyTimersAsync(k8s.Kubernetes client, RuntimeRegion region, FunctionSpec spec, string what, CancellationToken ct)
    {
        foreach (var timer in spec.Timers)
        {
            await UpsertAsync(client, region, KnativeMapping.SourcesVersion, KnativeMapping.PingSources, KnativeMapping.PingSourceName(spec.Key, timer.Name), what,
                _ => KnativeMapping.PingSource(spec, timer), ct);
        }

        var wanted = spec.Timers.Select(t => KnativeMapping.PingSourceName(spec.Key, t.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var name in await PingSourcesOfAsync(client, region, spec.Key, what, ct))
        {
            if (!wanted.Contains(name))
            {
                await DeleteCustomAsync(client, region, KnativeMapping.SourcesVersion, KnativeMapping.PingSources, name, what, ct);
            }
        }
    }

    private static async Task<IReadOnlyList<string>> PingSourcesOfAsync(k8s.Kubernetes client, RuntimeRegion region, FunctionKey key, string what, CancellationToken ct)
    {
        try
        {
            var list = await client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(KnativeMapping.SourcesGroup, KnativeMapping.SourcesVersion, region.Namespace,
                KnativeMapping.PingSources, labelSelector: $"{KnativeMapping.FunctionLabel}={key.Name}", cancellationToken: ct);
            return [.. (list["items"]?.AsArray() ?? []).Select(i => i?["metadata"]?["name"]?.GetValue<string>()).OfType<string>()];
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
            return []; // no PingSource type (Knative Eventing not installed): none of ours exists
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: true, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    public async Task DeleteAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"delete function {key} in region {region.Name}";
        var selector = $"{KnativeMapping.FunctionLabel}={key.Name}";
        try
        {
            var mappings = await client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(
                KnativeMapping.ServingGroup, KnativeMapping.DomainMappingVersion, region.Namespace, KnativeMapping.DomainMappings,
                labelSelector: selector, cancellationToken: ct);
            foreach (var mapping in mappings["items"]?.AsArray() ?? [])
            {
                var name = mapping?["metadata"]?["name"]?.GetValue<string>();
                if (name is not null)
                {
                    await DeleteCustomAsync(client, region, KnativeMapping.DomainMappingVersion, KnativeMapping.DomainMappings, name, what, ct);
                }
            }
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
            // No DomainMapping type (Knative not installed): there is nothing of ours to delete.
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: true, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }

        foreach (var name in await PingSourcesOfAsync(client, region, key, what, ct))
        {
            await DeleteCustomAsync(client, region, KnativeMapping.SourcesVersion, KnativeMapping.PingSources, name, what, ct);
        }

        var secrets = await CallAsync(() => client.CoreV1.ListNamespacedSecretAsync(region.Namespace, labelSelector: selector, cancellationToken: ct), what, false, ct);
        foreach (var secret in secrets.Items)
        {
            await DeleteSecretAsync(client, region, secret.Metadata.Name, what, ct);
        }

        await DeleteCustomAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, key.Name, what, ct);
        Log.Deleted(logger, key.Name, region.Name);
    }

    public async Task<FunctionObservation> ObserveAsync(RuntimeRegion region, FunctionKey key, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"observe function {key} in region {region.Name}";
        var service = await GetAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, key.Name, what, ct);
        if (service is null)
        {
            return new FunctionObservation(FunctionPhase.Absent, null, 0, 0);
        }

        // Knative Services carry no pod counts; their revisions do (desiredReplicas, actualReplicas = ready pods).
        var revisions = await CallAsync(() => client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(
            KnativeMapping.ServingGroup, KnativeMapping.ServingVersion, region.Namespace, KnativeMapping.Revisions,
            labelSelector: $"{KnativeMapping.KnativeServiceLabel}={key.Name}", cancellationToken: ct), what, true, ct);
        int instances = 0, ready = 0;
        foreach (var revision in revisions["items"]?.AsArray() ?? [])
        {
            var actual = IntOf(revision?["status"]?["actualReplicas"]);
            ready += actual;
            instances += Math.Max(actual, IntOf(revision?["status"]?["desiredReplicas"]));
        }

        var (status, reason, message) = ReadyCondition(service);
        var observed = IntOf(service["status"]?["observedGeneration"]) >= Generation(service);
        var phase = !observed ? FunctionPhase.Deploying : status switch
        {
            "True" => FunctionPhase.Ready,
            "False" => FunctionPhase.Failed,
            _ => FunctionPhase.Deploying,
        };
        return new FunctionObservation(phase, phase == FunctionPhase.Failed ? $"{reason}: {message}" : null, instances, ready);
    }

    /// <summary>
    /// Knative Services have no scale subresource (Deployments do): the count is the template's min-scale annotation,
    /// which makes a new draft revision. The manual count is also kept on the Service so ApplyAsync keeps it.
    /// </summary>
    public async Task ScaleAsync(RuntimeRegion region, FunctionKey key, int instances, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(instances);
        var client = Client(region);
        var what = $"scale function {key} in region {region.Name}";
        var written = await UpsertAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, key.Name, what, current =>
        {
            if (current is null)
            {
                throw new RuntimeException(RuntimeErrors.NotDeployed, $"{what}: the function has no Knative Service");
            }

            var service = current.DeepClone().AsObject();
            service.Remove("status");
            var annotations = Annotations(service);
            int minScale;
            if (instances > 0)
            {
                annotations[KnativeMapping.ManualScaleAnnotation] = KnativeMapping.Invariant(instances);
                minScale = instances;
            }
            else
            {
                annotations.Remove(KnativeMapping.ManualScaleAnnotation);
                minScale = int.TryParse(annotations[KnativeMapping.MinInstancesAnnotation]?.GetValue<string>(), NumberStyles.None, CultureInfo.InvariantCulture, out var min) ? min : 0;
            }

            var template = service["spec"]!["template"]!.AsObject();
            Annotations(template)[KnativeMapping.MinScale] = KnativeMapping.Invariant(minScale);
            KnativeMapping.NameTemplate(key, template);
            return service;
        }, ct);
        Log.Scaled(logger, key.Name, instances, written["spec"]?["template"]?["metadata"]?["name"]?.GetValue<string>(), region.Name);
    }

    public async Task MountDomainAsync(RuntimeRegion region, FunctionKey key, DomainSpec domain, CancellationToken ct)
    {
        var client = Client(region);
        var host = domain.Host.ToLowerInvariant();
        var what = $"mount domain {host} on function {key} in region {region.Name}";
        var secretName = SecretName(host);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [KnativeMapping.ManagedBy] = "atelier",
            [KnativeMapping.FunctionLabel] = key.Name,
        };

        var data = new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            ["tls.crt"] = Encoding.UTF8.GetBytes(domain.CertificatePem),
            ["tls.key"] = Encoding.UTF8.GetBytes(domain.PrivateKeyPem),
        };
        await UpsertSecretAsync(client, region, new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Metadata = new V1ObjectMeta { Name = secretName, NamespaceProperty = region.Namespace, Labels = labels },
            Type = "kubernetes.io/tls",
            Data = data,
        }, what, ct);

        await UpsertAsync(client, region, KnativeMapping.DomainMappingVersion, KnativeMapping.DomainMappings, host, what, _ => new JsonObject
        {
            ["apiVersion"] = $"{KnativeMapping.ServingGroup}/{KnativeMapping.DomainMappingVersion}",
            ["kind"] = "DomainMapping",
            ["metadata"] = new JsonObject
            {
                ["name"] = host,
                ["namespace"] = region.Namespace,
                ["labels"] = new JsonObject { [KnativeMapping.ManagedBy] = "atelier", [KnativeMapping.FunctionLabel] = key.Name },
            },
            ["spec"] = new JsonObject
            {
                ["ref"] = new JsonObject
                {
                    ["apiVersion"] = $"{KnativeMapping.ServingGroup}/{KnativeMapping.ServingVersion}",
                    ["kind"] = "Service",
                    ["name"] = key.Name,
                },
                ["tls"] = new JsonObject { ["secretName"] = secretName },
            },
        }, ct);
        Log.DomainMounted(logger, host, key.Name, region.Name);
    }

    public async Task UnmountDomainAsync(RuntimeRegion region, FunctionKey key, string host, CancellationToken ct)
    {
        var client = Client(region);
        host = host.ToLowerInvariant();
        var what = $"unmount domain {host} from function {key} in region {region.Name}";
        await DeleteCustomAsync(client, region, KnativeMapping.DomainMappingVersion, KnativeMapping.DomainMappings, host, what, ct);
        await DeleteSecretAsync(client, region, SecretName(host), what, ct);
        Log.DomainUnmounted(logger, host, key.Name, region.Name);
    }

    /// <summary>No slot accounting here: Knative's activator and queue-proxy hold and spread requests per containerConcurrency.</summary>
    public async ValueTask<IInstanceLease> AcquireAsync(RuntimeRegion region, FunctionKey key, string revision, TimeSpan wait, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"route to revision {revision} of function {key} in region {region.Name}";
        var service = await GetAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, key.Name, what, ct)
            ?? throw new RuntimeException(RuntimeErrors.NotDeployed, $"{what}: the function has no Knative Service");
        var (status, reason, message) = ReadyCondition(service);
        if (status != "True")
        {
            throw new RuntimeException(RuntimeErrors.NotDeployed, $"{what}: the Knative Service is not ready ({reason}: {message})");
        }

        // ApplyAsync tags each revision's traffic entry with the revision's name; the tag's URL addresses that revision alone.
        foreach (var entry in service["status"]?["traffic"]?.AsArray() ?? [])
        {
            var url = entry?["url"]?.GetValue<string>();
            if (entry?["tag"]?.GetValue<string>() == revision && Uri.TryCreate(url, UriKind.Absolute, out var tagged))
            {
                return new KnativeLease(tagged, entry["revisionName"]?.GetValue<string>() ?? revision);
            }
        }

        if (revision == KnativeMapping.Latest && Uri.TryCreate(service["status"]?["url"]?.GetValue<string>(), UriKind.Absolute, out var main))
        {
            return new KnativeLease(main, service["status"]?["latestReadyRevisionName"]?.GetValue<string>() ?? revision);
        }

        throw new RuntimeException(RuntimeErrors.UnknownRevision, $"{what}: the Service has no route tagged {revision}");
    }

    public void Dispose()
    {
        foreach (var client in _clients.Values.Where(c => c.IsValueCreated))
        {
            client.Value.Dispose();
        }

        _clients.Clear();
    }

    private k8s.Kubernetes Client(RuntimeRegion region)
    {
        if (string.IsNullOrWhiteSpace(region.KubeConfig))
        {
            throw new RuntimeException(KubeErrors.ConfigMissing, $"region {region.Name} has no kube config");
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(region.KubeConfig)));
        var cacheKey = region.Name + "\n" + hash;
        var lazy = _clients.GetOrAdd(cacheKey, added =>
        {
            // A region's kube config changed: forget its old client (not disposed: a call may still be using it).
            foreach (var stale in _clients.Keys.Where(k => k.StartsWith(region.Name + "\n", StringComparison.Ordinal) && k != added))
            {
                _clients.TryRemove(stale, out _);
            }

            return new Lazy<k8s.Kubernetes>(() => Build(region), LazyThreadSafetyMode.ExecutionAndPublication);
        });
        try
        {
            return lazy.Value;
        }
        catch (RuntimeException)
        {
            _clients.TryRemove(cacheKey, out _);
            throw;
        }
    }

    private static k8s.Kubernetes Build(RuntimeRegion region)
    {
        try
        {
            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(region.KubeConfig!));
            return new k8s.Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(stream));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The exception's own message may quote the config (a token, a key): only its type goes out.
            throw new RuntimeException(KubeErrors.ConfigInvalid, $"the kube config of region {region.Name} could not be used ({e.GetType().Name})");
        }
    }

    private static async Task<T> CallAsync<T>(Func<Task<T>> call, string what, bool customResource, CancellationToken ct)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    /// <summary>Reads a Knative object; null when it is absent. A missing API group is an error, not an absence.</summary>
    private static async Task<JsonObject?> GetAsync(k8s.Kubernetes client, RuntimeRegion region, string version, string plural, string name, string what, CancellationToken ct)
    {
        try
        {
            return await client.CustomObjects.GetNamespacedCustomObjectAsync<JsonObject>(KnativeMapping.GroupOf(plural), version, region.Namespace, plural, name, ct);
        }
        catch (HttpOperationException e) when (KubeErrors.IsAbsent(e))
        {
            return null;
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: true, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    /// <summary>
    /// Creates or replaces a Knative object: read, build the desired object from what was read, write it with the read
    /// resourceVersion. A 409 (someone wrote in between, or created it first) re-reads and tries again, up to
    /// <see cref="KubernetesBackendOptions.ConflictAttempts"/> writes; one that still conflicts is a <see cref="CustomResourceException"/>.
    /// </summary>
    private async Task<JsonObject> UpsertAsync(k8s.Kubernetes client, RuntimeRegion region, string version, string plural, string name, string what, Func<JsonObject?, JsonObject> desired, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var current = await GetAsync(client, region, version, plural, name, what, ct);
            var body = desired(current);
            try
            {
                if (current is null)
                {
                    return await client.CustomObjects.CreateNamespacedCustomObjectAsync<JsonObject>(body, KnativeMapping.GroupOf(plural), version, region.Namespace, plural, cancellationToken: ct);
                }

                body["metadata"]!["resourceVersion"] = current["metadata"]?["resourceVersion"]?.DeepClone();
                return await client.CustomObjects.ReplaceNamespacedCustomObjectAsync<JsonObject>(body, KnativeMapping.GroupOf(plural), version, region.Namespace, plural, name, cancellationToken: ct);
            }
            catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.Conflict) && attempt < _options.ConflictAttempts)
            {
                Log.Conflict(logger, plural, name, attempt, region.Name);
            }
            catch (Exception e) when (KubeErrors.Map(e, what, customResource: true, ct) is RuntimeException mapped && mapped != e)
            {
                throw mapped;
            }
        }
    }

    private async Task UpsertSecretAsync(k8s.Kubernetes client, RuntimeRegion region, V1Secret secret, string what, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                V1Secret? current;
                try
                {
                    current = await client.CoreV1.ReadNamespacedSecretAsync(secret.Metadata.Name, region.Namespace, cancellationToken: ct);
                }
                catch (HttpOperationException e) when (KubeErrors.IsAbsent(e))
                {
                    current = null;
                }

                if (current is null)
                {
                    await client.CoreV1.CreateNamespacedSecretAsync(secret, region.Namespace, cancellationToken: ct);
                }
                else
                {
                    secret.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
                    await client.CoreV1.ReplaceNamespacedSecretAsync(secret, secret.Metadata.Name, region.Namespace, cancellationToken: ct);
                }

                return;
            }
            catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.Conflict) && attempt < _options.ConflictAttempts)
            {
                Log.Conflict(logger, "secrets", secret.Metadata.Name, attempt, region.Name);
            }
            catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
            {
                throw mapped;
            }
        }
    }

    /// <summary>Deletes a Knative object. Any 404 is success: the object, or its whole type, is not there.</summary>
    private static async Task DeleteCustomAsync(k8s.Kubernetes client, RuntimeRegion region, string version, string plural, string name, string what, CancellationToken ct)
    {
        try
        {
            await client.CustomObjects.DeleteNamespacedCustomObjectAsync(KnativeMapping.GroupOf(plural), version, region.Namespace, plural, name, cancellationToken: ct);
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: true, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    private static async Task DeleteSecretAsync(k8s.Kubernetes client, RuntimeRegion region, string name, string what, CancellationToken ct)
    {
        try
        {
            await client.CoreV1.DeleteNamespacedSecretAsync(name, region.Namespace, cancellationToken: ct);
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    /// <summary>
    /// Reads the Service until <paramref name="done"/> holds for a status that has seen <paramref name="generation"/>
    /// (an older status says nothing about what we just wrote), up to <see cref="KubernetesBackendOptions.ReadyTimeout"/>.
    /// </summary>
    private async Task WaitAsync(k8s.Kubernetes client, RuntimeRegion region, FunctionKey key, long generation, string what, Func<JsonObject, bool> done, CancellationToken ct)
    {
        var deadline = clock.GetUtcNow() + _options.ReadyTimeout;
        var last = "no status yet";
        while (true)
        {
            var service = await GetAsync(client, region, KnativeMapping.ServingVersion, KnativeMapping.Services, key.Name, what, ct)
                ?? throw new RuntimeException(RuntimeErrors.NotDeployed, $"{what}: the Knative Service disappeared");
            if (IntOf(service["status"]?["observedGeneration"]) >= generation)
            {
                if (done(service))
                {
                    return;
                }

                var (status, reason, message) = ReadyCondition(service);
                last = $"Ready={status ?? "none"} {reason}: {message}";
            }

            if (clock.GetUtcNow() >= deadline)
            {
                throw new RuntimeException(RuntimeErrors.NeverHealthy, $"{what}: not done after {_options.ReadyTimeout.TotalSeconds.ToString("0", CultureInfo.InvariantCulture)} s ({last})");
            }

            await Task.Delay(_options.PollInterval, clock, ct);
        }
    }

    private static JsonObject Service(FunctionSpec spec, JsonObject? current, JsonObject template, JsonArray? traffic)
    {
        var annotations = new JsonObject { [KnativeMapping.MinInstancesAnnotation] = KnativeMapping.Invariant(spec.MinInstances) };
        var manual = ManualScale(current);
        if (manual > 0)
        {
            annotations[KnativeMapping.ManualScaleAnnotation] = KnativeMapping.Invariant(manual);
        }

        return new JsonObject
        {
            ["apiVersion"] = $"{KnativeMapping.ServingGroup}/{KnativeMapping.ServingVersion}",
            ["kind"] = "Service",
            ["metadata"] = new JsonObject
            {
                ["name"] = spec.Key.Name,
                ["labels"] = KnativeMapping.Labels(spec),
                ["annotations"] = annotations,
            },
            ["spec"] = new JsonObject
            {
                ["template"] = template,
                ["traffic"] = traffic ?? new JsonArray(new JsonObject { ["latestRevision"] = true, ["percent"] = 100 }),
            },
        };
    }

    private static bool TakesTraffic(FunctionSpec spec, string revision) =>
        KnativeMapping.EffectiveTraffic(spec).Any(t => t.Percent > 0 && (t.Revision == revision || (t.Revision == KnativeMapping.Latest && KnativeMapping.TemplateSource(spec).Name == revision)));

    private static int ManualScale(JsonObject? service) =>
        int.TryParse(service?["metadata"]?["annotations"]?[KnativeMapping.ManualScaleAnnotation]?.GetValue<string>(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;

    private static JsonObject Annotations(JsonObject obj)
    {
        var metadata = obj["metadata"] as JsonObject ?? (JsonObject)(obj["metadata"] = new JsonObject());
        return metadata["annotations"] as JsonObject ?? (JsonObject)(metadata["annotations"] = new JsonObject());
    }

    private static (string? Status, string? Reason, string? Message) ReadyCondition(JsonObject service)
    {
        foreach (var condition in service["status"]?["conditions"]?.AsArray() ?? [])
        {
            if (condition?["type"]?.GetValue<string>() == "Ready")
            {
                return (condition["status"]?.GetValue<string>(), condition["reason"]?.GetValue<string>(), condition["message"]?.GetValue<string>());
            }
        }

        return (null, null, null);
    }

    private static long Generation(JsonObject obj) => IntOf(obj["metadata"]?["generation"]);

    private static int IntOf(JsonNode? node) =>
        node is JsonValue value && value.TryGetValue<long>(out var n) ? (int)Math.Min(n, int.MaxValue) : 0;

    /// <summary>The TLS secret of a custom domain: its host with dots as dashes, <c>-tls</c>.</summary>
    public static string SecretName(string host) => host.ToLowerInvariant().Replace('.', '-') + "-tls";

    private sealed class KnativeLease(Uri destination, string instanceId) : IInstanceLease
    {
        public Uri Destination { get; } = destination;

        public string InstanceId { get; } = instanceId;

        /// <summary>Nothing to check from here: Knative's queue-proxy and the kubelet's probes own the pods' health.</summary>
        public void ReportFailure()
        {
        }

        public void Dispose()
        {
        }
    }

    private static partial class Log
    {
        [LoggerMessage(3120, LogLevel.Information, "Workload {Workload} applied with {Replicas} replicas in region {Region}")]
        public static partial void WorkloadApplied(ILogger logger, string workload, int replicas, string region);

        [LoggerMessage(3121, LogLevel.Information, "Workload {Workload} scaled to {Replicas} in region {Region}")]
        public static partial void WorkloadScaled(ILogger logger, string workload, int replicas, string region);

        [LoggerMessage(3100, LogLevel.Information, "Knative Service {Function} applied in region {Region}: template {Template}")]
        public static partial void Applied(ILogger logger, string function, string? template, string region);

        [LoggerMessage(3101, LogLevel.Information, "{Plural}/{Name} changed under write {Attempt} in region {Region}: reading it again")]
        public static partial void Conflict(ILogger logger, string plural, string name, int attempt, string region);

        [LoggerMessage(3102, LogLevel.Information, "Function {Function} in region {Region}: creating missing published revision {Revision}")]
        public static partial void CreatingPublishedRevision(ILogger logger, string function, string revision, string region);

        [LoggerMessage(3103, LogLevel.Information, "Function {Function} deleted in region {Region}")]
        public static partial void Deleted(ILogger logger, string function, string region);

        [LoggerMessage(3104, LogLevel.Information, "Function {Function} scaled to {Instances} in region {Region}: template {Template}")]
        public static partial void Scaled(ILogger logger, string function, int instances, string? template, string region);

        [LoggerMessage(3105, LogLevel.Information, "Domain {Host} mounted on function {Function} in region {Region}")]
        public static partial void DomainMounted(ILogger logger, string host, string function, string region);

        [LoggerMessage(3106, LogLevel.Information, "Domain {Host} unmounted from function {Function} in region {Region}")]
        public static partial void DomainUnmounted(ILogger logger, string host, string function, string region);
    }
}
