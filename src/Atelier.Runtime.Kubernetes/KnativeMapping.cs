using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Atelier.Runtime.Kubernetes;

/// <summary>
/// Builds the Knative objects for a function spec (docs/kubernetes.md has the field-by-field table). Pure functions of
/// their inputs, so the same spec always gives the same JSON and the same template revision name.
/// </summary>
internal static partial class KnativeMapping
{
    public const string ServingGroup = "serving.knative.dev";
    public const string ServingVersion = "v1";
    public const string DomainMappingVersion = "v1beta1";
    public const string Services = "services";
    public const string Revisions = "revisions";
    public const string DomainMappings = "domainmappings";
    public const string SourcesGroup = "sources.knative.dev";
    public const string SourcesVersion = "v1";
    public const string PingSources = "pingsources";

    public const string ManagedBy = "app.kubernetes.io/managed-by";
    public const string FunctionLabel = "atelier.dev/function";
    public const string RevisionLabel = "atelier.dev/revision";
    public const string KnativeServiceLabel = "serving.knative.dev/service";

    /// <summary>The spec's MinInstances, kept on the Service so that a manual scale of 0 can return to it (ScaleAsync has no spec).</summary>
    public const string MinInstancesAnnotation = "atelier.dev/min-instances";

    /// <summary>A manual scale set by ScaleAsync: kept across ApplyAsync until ScaleAsync(0) removes it.</summary>
    public const string ManualScaleAnnotation = "atelier.dev/manual-scale";

    public const string MinScale = "autoscaling.knative.dev/min-scale";
    public const string MaxScale = "autoscaling.knative.dev/max-scale";
    public const string ScaleDownDelay = "autoscaling.knative.dev/scale-down-delay";

    public const string Latest = "latest";

    /// <summary>Knative caps scale-down-delay at one hour.</summary>
    private const int MaxScaleDownDelaySeconds = 3600;

    [GeneratedRegex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant)]
    public static partial Regex Dns1035();

    /// <summary>The Knative revision a published version becomes: <c>{function}-{version}</c>, e.g. <c>fn-abc-v3</c>.</summary>
    public static string PublishedRevisionName(FunctionKey key, string revision) => $"{key.Name}-{revision}";

    /// <summary>
    /// The revision spec that goes into <c>spec.template</c>: <c>latest</c> when the spec has it, else the last one listed.
    /// Knative only makes a revision from the current template, so the template is always the draft.
    /// </summary>
    public static RevisionSpec TemplateSource(FunctionSpec spec) =>
        spec.Revisions.FirstOrDefault(r => r.Name == Latest) ?? spec.Revisions[^1];

    /// <summary>Checks what Knative would refuse or we could not map, before any call, so the message names the spec's own fields.</summary>
    public static void Validate(FunctionSpec spec)
    {
        if (!Dns1035().IsMatch(spec.Key.Name) || spec.Key.Name.Length > 40)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"function name '{spec.Key.Name}' is not a DNS-1035 label of at most 40 characters");
        }

        if (spec.Revisions.Count == 0)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"function {spec.Key} has no revisions");
        }

        foreach (var revision in spec.Revisions)
        {
            if (string.IsNullOrWhiteSpace(revision.Image))
            {
                throw new RuntimeException(RuntimeErrors.InvalidSpec, $"revision {revision.Name} of {spec.Key} has no container image");
            }

            if (!Dns1035().IsMatch(PublishedRevisionName(spec.Key, revision.Name)))
            {
                throw new RuntimeException(RuntimeErrors.InvalidSpec, $"revision name '{revision.Name}' does not make a DNS-1035 label");
            }
        }

        foreach (var target in spec.Traffic)
        {
            if (spec.Revisions.All(r => r.Name != target.Revision))
            {
                throw new RuntimeException(RuntimeErrors.UnknownRevision, $"traffic names revision {target.Revision}, which {spec.Key} does not have");
            }
        }

        if (spec.Traffic.Count > 0 && spec.Traffic.Sum(t => t.Percent) != 100)
        {
            throw new RuntimeException(RuntimeErrors.InvalidSpec, $"the traffic of {spec.Key} sums to {spec.Traffic.Sum(t => t.Percent)}, not 100");
        }
    }

    /// <summary>The traffic targets with the default applied: all to <c>latest</c> when the spec names none.</summary>
    public static IReadOnlyList<TrafficTarget> EffectiveTraffic(FunctionSpec spec) =>
        spec.Traffic.Count > 0 ? spec.Traffic : [new TrafficTarget(Latest, 100)];

    /// <summary>
    /// The Service's <c>spec.traffic</c>: one entry per target, tagged with its tag or else its revision's name (so that
    /// AcquireAsync finds each revision's own URL in <c>status.traffic</c>), and a 0% entry tagged <c>latest</c> when the
    /// draft takes no share, so that it can still be invoked. A tag already used is left off the later entry.
    /// </summary>
    public static JsonArray Traffic(FunctionSpec spec)
    {
        var entries = new JsonArray();
        var tags = new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in EffectiveTraffic(spec))
        {
            entries.Add(TrafficEntry(spec.Key, target.Revision, target.Percent, tags.Add(target.Tag ?? target.Revision) ? target.Tag ?? target.Revision : null));
        }

        if (spec.Revisions.Any(r => r.Name == Latest) && tags.Add(Latest))
        {
            entries.Add(TrafficEntry(spec.Key, Latest, 0, Latest));
        }

        return entries;
    }

    private static JsonObject TrafficEntry(FunctionKey key, string revision, int percent, string? tag)
    {
        var entry = revision == Latest
            ? new JsonObject { ["latestRevision"] = true }
            : new JsonObject { ["revisionName"] = PublishedRevisionName(key, revision), ["latestRevision"] = false };
        entry["percent"] = percent;
        if (tag is not null)
        {
            entry["tag"] = tag;
        }

        return entry;
    }

    /// <summary>
    /// A revision template: the container, its probe and resources, and the autoscaling annotations. Its
    /// <c>metadata.name</c> is left for the caller (<see cref="NameTemplate"/> for the draft).
    /// </summary>
    public static JsonObject Template(FunctionSpec spec, RevisionSpec revision, int minScale)
    {
        var labels = Labels(spec);
        labels[RevisionLabel] = revision.Name;
        var annotations = new JsonObject { [MinScale] = Invariant(minScale) };
        if (spec.MaxInstances > 0)
        {
            annotations[MaxScale] = Invariant(spec.MaxInstances);
        }

        var delay = Math.Clamp((int)spec.IdleWindow.TotalSeconds, 0, MaxScaleDownDelaySeconds);
        annotations[ScaleDownDelay] = Invariant(delay) + "s";

        var container = new JsonObject { ["image"] = revision.Image };
        if (revision.Port > 0)
        {
            // Knative allows one port; without one it picks 8080 and passes it as PORT.
            container["ports"] = new JsonArray(new JsonObject { ["containerPort"] = revision.Port });
        }

        if (revision.Environment.Count > 0)
        {
            var env = new JsonArray();
            foreach (var (name, value) in revision.Environment.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                env.Add(new JsonObject { ["name"] = name, ["value"] = value });
            }

            container["env"] = env;
        }

        var resources = Resources(revision);
        if (resources is not null)
        {
            container["resources"] = resources;
        }

        // Knative fills in the probe's port with the container's: naming one here is refused.
        container["readinessProbe"] = new JsonObject { ["httpGet"] = new JsonObject { ["path"] = revision.HealthPath } };

        return new JsonObject
        {
            ["metadata"] = new JsonObject { ["labels"] = labels, ["annotations"] = annotations },
            ["spec"] = new JsonObject
            {
                ["containerConcurrency"] = revision.InstanceConcurrency,
                ["timeoutSeconds"] = revision.TimeoutSeconds,
                ["containers"] = new JsonArray(container),
            },
        };
    }

    private static JsonObject? Resources(RevisionSpec revision)
    {
        var requests = new JsonObject();
        var limits = new JsonObject();
        if (revision.Cpu > 0)
        {
            var cpu = Invariant((int)Math.Round(revision.Cpu * 1000)) + "m";
            requests["cpu"] = cpu;
            limits["cpu"] = cpu;
        }

        if (revision.MemoryMb > 0)
        {
            var memory = Invariant(revision.MemoryMb) + "Mi";
            requests["memory"] = memory;
            limits["memory"] = memory;
        }

        if (revision.Gpu > 0)
        {
            // Extended resources such as GPUs are set as limits only (the request defaults to the limit).
            limits["nvidia.com/gpu"] = Invariant(revision.Gpu);
        }

        if (limits.Count == 0)
        {
            return null;
        }

        var resources = new JsonObject { ["limits"] = limits };
        if (requests.Count > 0)
        {
            resources["requests"] = requests;
        }

        return resources;
    }

    /// <summary>
    /// Names the draft's template <c>{function}-latest-{hash}</c>, the hash over the template without its name: Knative
    /// refuses a changed template under an unchanged name, and an unchanged one under the same name makes no new revision.
    /// </summary>
    public static void NameTemplate(FunctionKey key, JsonObject template)
    {
        var metadata = template["metadata"]!.AsObject();
        metadata.Remove("name");
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(template.ToJsonString()));
        metadata["name"] = $"{key.Name}-{Latest}-{Convert.ToHexStringLower(hash)[..8]}";
    }

    public static JsonObject Labels(FunctionSpec spec)
    {
        var labels = new JsonObject();
        foreach (var (name, value) in spec.Labels.OrderBy(l => l.Key, StringComparer.Ordinal))
        {
            labels[name] = value;
        }

        labels[ManagedBy] = "atelier";
        labels[FunctionLabel] = spec.Key.Name;
        return labels;
    }

    public static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The API group a plural of ours lives in.</summary>
    public static string GroupOf(string plural) => plural == PingSources ? SourcesGroup : ServingGroup;

    /// <summary>The PingSource name of a timer: the function's name and the timer's.</summary>
    public static string PingSourceName(FunctionKey key, string timer) => $"{key.Name}-{timer}";

    /// <summary>A Knative Eventing PingSource that posts the timer's payload to the function's Knative Service on its schedule.</summary>
    public static JsonObject PingSource(FunctionSpec spec, TimerSpec timer) => new()
    {
        ["apiVersion"] = $"{SourcesGroup}/{SourcesVersion}",
        ["kind"] = "PingSource",
        ["metadata"] = new JsonObject
        {
            ["name"] = PingSourceName(spec.Key, timer.Name),
            ["labels"] = new JsonObject { [ManagedBy] = "atelier", [FunctionLabel] = spec.Key.Name },
        },
        ["spec"] = new JsonObject
        {
            ["schedule"] = timer.Schedule,
            ["timezone"] = "UTC",
            ["contentType"] = "application/json",
            ["data"] = timer.Payload,
            ["sink"] = new JsonObject
            {
                ["ref"] = new JsonObject { ["apiVersion"] = $"{ServingGroup}/{ServingVersion}", ["kind"] = "Service", ["name"] = spec.Key.Name },
            },
        },
    };
}
