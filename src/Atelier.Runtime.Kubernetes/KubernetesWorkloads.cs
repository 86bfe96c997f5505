using System.Net;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace Atelier.Runtime.Kubernetes;

/// <summary>
/// Worker workloads on Kubernetes: a plain <c>Deployment</c> (workers pull jobs; nothing routes to them, so no Knative),
/// its pod template carrying the image and arguments, the instance type's node selector and <c>nvidia.com/gpu</c> limits,
/// and the secrets in a <c>Secret</c> of the same name that the container reads its environment from. Replicas change
/// through the Deployment's scale subresource, so a scale never rewrites the pod template (no rollout).
/// </summary>
public sealed partial class KubernetesBackend
{
    public const string WorkloadLabel = "atelier.dev/workload";
    public const string GpuResource = "nvidia.com/gpu";

    public async Task ApplyWorkloadAsync(RuntimeRegion region, WorkloadSpec spec, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Replicas < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"A replica count cannot be negative ({spec.Replicas}).");
        }

        if (string.IsNullOrWhiteSpace(spec.Image))
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"Workload {spec.Name} has no image: a kubernetes region runs images.");
        }

        var client = Client(region);
        var what = $"apply workload {spec.Name} in region {region.Name}";
        var labels = new Dictionary<string, string>(spec.Labels, StringComparer.Ordinal)
        {
            [KnativeMapping.ManagedBy] = "atelier",
            [WorkloadLabel] = spec.Name,
        };
        await UpsertSecretAsync(client, region, new V1Secret
        {
            ApiVersion = "v1",
            Kind = "Secret",
            Metadata = new V1ObjectMeta { Name = spec.Name, Labels = labels },
            Type = "Opaque",
            StringData = new Dictionary<string, string>(spec.Secrets, StringComparer.Ordinal),
        }, what, ct);

        var limits = new Dictionary<string, ResourceQuantity>(StringComparer.Ordinal);
        if (spec.Gpus > 0)
        {
            limits[GpuResource] = new ResourceQuantity(spec.Gpus.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var container = new V1Container
        {
            Name = "worker",
            Image = spec.Image,
            Args = [.. spec.Args],
            Env = [.. spec.Environment.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => new V1EnvVar { Name = e.Key, Value = e.Value })],
            EnvFrom = spec.Secrets.Count == 0 ? null : [new V1EnvFromSource { SecretRef = new V1SecretEnvSource { Name = spec.Name } }],
            Resources = limits.Count == 0 ? null : new V1ResourceRequirements { Limits = limits },
        };
        var deployment = new V1Deployment
        {
            ApiVersion = "apps/v1",
            Kind = "Deployment",
            Metadata = new V1ObjectMeta { Name = spec.Name, Labels = labels },
            Spec = new V1DeploymentSpec
            {
                Replicas = spec.Replicas,
                Selector = new V1LabelSelector { MatchLabels = new Dictionary<string, string> { [WorkloadLabel] = spec.Name } },
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        Containers = [container],
                        NodeSelector = spec.NodeSelector.Count == 0 ? null : new Dictionary<string, string>(spec.NodeSelector, StringComparer.Ordinal),
                    },
                },
            },
        };

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                V1Deployment? current;
                try
                {
                    current = await client.AppsV1.ReadNamespacedDeploymentAsync(spec.Name, region.Namespace, cancellationToken: ct);
                }
                catch (HttpOperationException e) when (KubeErrors.IsAbsent(e))
                {
                    current = null;
                }

                if (current is null)
                {
                    await client.AppsV1.CreateNamespacedDeploymentAsync(deployment, region.Namespace, cancellationToken: ct);
                }
                else
                {
                    deployment.Metadata.ResourceVersion = current.Metadata.ResourceVersion;
                    await client.AppsV1.ReplaceNamespacedDeploymentAsync(deployment, spec.Name, region.Namespace, cancellationToken: ct);
                }

                Log.WorkloadApplied(logger, spec.Name, spec.Replicas, region.Name);
                return;
            }
            catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.Conflict) && attempt < _options.ConflictAttempts)
            {
                Log.Conflict(logger, "deployments", spec.Name, attempt, region.Name);
            }
            catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
            {
                throw mapped;
            }
        }
    }

    public async Task ScaleWorkloadAsync(RuntimeRegion region, string name, int replicas, CancellationToken ct)
    {
        if (replicas < 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"A replica count cannot be negative ({replicas}).");
        }

        var client = Client(region);
        var what = $"scale workload {name} in region {region.Name} to {replicas}";
        var patch = new V1Patch("{\"spec\":{\"replicas\":" + replicas.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}}", V1Patch.PatchType.MergePatch);
        try
        {
            await client.AppsV1.PatchNamespacedDeploymentScaleAsync(patch, name, region.Namespace, cancellationToken: ct);
            Log.WorkloadScaled(logger, name, replicas, region.Name);
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
            throw new RuntimeException(RuntimeErrors.NotDeployed, $"{what}: the Deployment is not there");
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }

    public async Task DeleteWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"delete workload {name} in region {region.Name}";
        try
        {
            await client.AppsV1.DeleteNamespacedDeploymentAsync(name, region.Namespace, cancellationToken: ct);
        }
        catch (HttpOperationException e) when (KubeErrors.IsStatus(e, HttpStatusCode.NotFound))
        {
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }

        await DeleteSecretAsync(client, region, name, what, ct);
    }

    public async Task<IReadOnlyDictionary<string, int>> ReadyInstancesAsync(RuntimeRegion region, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"count instances in region {region.Name}";
        var ready = new Dictionary<string, int>(StringComparer.Ordinal);
        // Knative's revisions carry their service's name and their ready pods (actualReplicas).
        var revisions = await CallAsync(() => client.CustomObjects.ListNamespacedCustomObjectAsync<JsonObject>(
            KnativeMapping.ServingGroup, KnativeMapping.ServingVersion, region.Namespace, KnativeMapping.Revisions, cancellationToken: ct), what, true, ct);
        foreach (var revision in revisions["items"]?.AsArray() ?? [])
        {
            if (revision?["metadata"]?["labels"]?[KnativeMapping.KnativeServiceLabel]?.GetValue<string>() is { } service)
            {
                ready[service] = ready.GetValueOrDefault(service) + IntOf(revision["status"]?["actualReplicas"]);
            }
        }

        try
        {
            var deployments = await client.AppsV1.ListNamespacedDeploymentAsync(region.Namespace, labelSelector: $"{KnativeMapping.ManagedBy}=atelier", cancellationToken: ct);
            foreach (var d in deployments.Items)
            {
                if (d.Metadata?.Labels?.TryGetValue(WorkloadLabel, out var name) == true)
                {
                    ready[name] = d.Status?.ReadyReplicas ?? 0;
                }
            }
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }

        return ready;
    }

    public async Task<WorkloadObservation> ObserveWorkloadAsync(RuntimeRegion region, string name, CancellationToken ct)
    {
        var client = Client(region);
        var what = $"read workload {name} in region {region.Name}";
        try
        {
            var d = await client.AppsV1.ReadNamespacedDeploymentAsync(name, region.Namespace, cancellationToken: ct);
            var reason = d.Status?.Conditions?.FirstOrDefault(c => c.Type == "Available" && c.Status == "False")?.Message;
            return new WorkloadObservation(true, d.Spec?.Replicas ?? 0, d.Status?.ReadyReplicas ?? 0, reason);
        }
        catch (HttpOperationException e) when (KubeErrors.IsAbsent(e))
        {
            return new WorkloadObservation(false, 0, 0, null);
        }
        catch (Exception e) when (KubeErrors.Map(e, what, customResource: false, ct) is RuntimeException mapped && mapped != e)
        {
            throw mapped;
        }
    }
}
