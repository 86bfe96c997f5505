using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;

namespace Atelier.Runtime.Kubernetes.Tests;

/// <summary>The kubernetes backend through the real KubernetesClient against <see cref="KubeStandIn"/>.</summary>
public sealed class KubernetesBackendTests : IAsyncLifetime
{
    private const string Services = "/apis/serving.knative.dev/v1/namespaces/atelier/services";

    private static readonly FunctionKey Key = new("fn-abc");

    private KubeStandIn _kube = null!;
    private KubernetesBackend _backend = null!;
    private RuntimeRegion _region = null!;

    public async ValueTask InitializeAsync()
    {
        _kube = await KubeStandIn.StartAsync();
        _backend = NewBackend();
        _region = new RuntimeRegion("eu-1", "kubernetes", _kube.KubeConfig());
    }

    public async ValueTask DisposeAsync()
    {
        _backend.Dispose();
        await _kube.DisposeAsync();
    }

    private static KubernetesBackend NewBackend() => new(TimeProvider.System, NullLogger<KubernetesBackend>.Instance,
        new KubernetesBackendOptions { ReadyTimeout = TimeSpan.FromSeconds(20), PollInterval = TimeSpan.FromMilliseconds(20) });

    private static RevisionSpec Revision(string name, string image = "ghcr.io/atelier/engine:1") => new()
    {
        Name = name,
        Image = image,
        Port = 7860,
        HealthPath = "/healthz",
        InstanceConcurrency = 4,
        TimeoutSeconds = 120,
        Cpu = 2,
        MemoryMb = 4096,
        Gpu = 1,
        Environment = new Dictionary<string, string> { ["MODEL"] = "sdxl" },
    };

    private static FunctionSpec Spec(IReadOnlyList<TrafficTarget>? traffic = null, params RevisionSpec[] revisions) => new()
    {
        Key = Key,
        Revisions = revisions.Length > 0 ? revisions : [Revision("latest")],
        Traffic = traffic ?? [],
        MinInstances = 1,
        MaxInstances = 5,
        IdleWindow = TimeSpan.FromMinutes(5),
        Labels = new Dictionary<string, string> { ["atelier.dev/tenant"] = "t-1" },
    };

    private static string? Str(JsonNode? node) => node?.GetValue<string>();

    [Fact]
    public async Task ApplyAsync_NewFunction_CreatesKnativeServiceWithMappedFields()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);

        var service = _kube.Get("services", "fn-abc")!;
        Assert.Equal("serving.knative.dev/v1", Str(service["apiVersion"]));
        Assert.Equal("atelier", Str(service["metadata"]!["labels"]!["app.kubernetes.io/managed-by"]));
        Assert.Equal("t-1", Str(service["metadata"]!["labels"]!["atelier.dev/tenant"]));
        var template = service["spec"]!["template"]!;
        Assert.StartsWith("fn-abc-latest-", Str(template["metadata"]!["name"]), StringComparison.Ordinal);
        var annotations = template["metadata"]!["annotations"]!;
        Assert.Equal("1", Str(annotations["autoscaling.knative.dev/min-scale"]));
        Assert.Equal("5", Str(annotations["autoscaling.knative.dev/max-scale"]));
        Assert.Equal("300s", Str(annotations["autoscaling.knative.dev/scale-down-delay"]));
        Assert.Equal(4, template["spec"]!["containerConcurrency"]!.GetValue<int>());
        Assert.Equal(120, template["spec"]!["timeoutSeconds"]!.GetValue<int>());
        var container = template["spec"]!["containers"]![0]!;
        Assert.Equal("ghcr.io/atelier/engine:1", Str(container["image"]));
        Assert.Equal(7860, container["ports"]![0]!["containerPort"]!.GetValue<int>());
        Assert.Equal("/healthz", Str(container["readinessProbe"]!["httpGet"]!["path"]));
        Assert.Equal("MODEL", Str(container["env"]![0]!["name"]));
        Assert.Equal("sdxl", Str(container["env"]![0]!["value"]));
        Assert.Equal("2000m", Str(container["resources"]!["limits"]!["cpu"]));
        Assert.Equal("4096Mi", Str(container["resources"]!["limits"]!["memory"]));
        Assert.Equal("1", Str(container["resources"]!["limits"]!["nvidia.com/gpu"]));
        var traffic = Assert.Single(service["spec"]!["traffic"]!.AsArray())!;
        Assert.True(traffic["latestRevision"]!.GetValue<bool>());
        Assert.Equal(100, traffic["percent"]!.GetValue<int>());
        Assert.Equal("latest", Str(traffic["tag"]));
    }

    [Fact]
    public async Task ApplyAsync_NoMaxInstances_OmitsMaxScale()
    {
        await _backend.ApplyAsync(_region, Spec() with { MaxInstances = 0 }, CancellationToken.None);

        var annotations = _kube.Get("services", "fn-abc")!["spec"]!["template"]!["metadata"]!["annotations"]!.AsObject();
        Assert.False(annotations.ContainsKey("autoscaling.knative.dev/max-scale"));
    }

    [Fact]
    public async Task ApplyAsync_Existing_ReplacesWithResourceVersionAndNewTemplateName()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        var before = _kube.Get("services", "fn-abc")!;

        await _backend.ApplyAsync(_region, Spec(null, Revision("latest", "ghcr.io/atelier/engine:2")), CancellationToken.None);

        var after = _kube.Get("services", "fn-abc")!;
        Assert.Contains($"PUT {Services}/fn-abc", _kube.Requests);
        Assert.Equal(Str(before["metadata"]!["uid"]), Str(after["metadata"]!["uid"]));
        Assert.NotEqual(Str(before["metadata"]!["resourceVersion"]), Str(after["metadata"]!["resourceVersion"]));
        Assert.Equal(2, after["metadata"]!["generation"]!.GetValue<long>());
        Assert.Equal("ghcr.io/atelier/engine:2", Str(after["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]));
        Assert.NotEqual(Str(before["spec"]!["template"]!["metadata"]!["name"]), Str(after["spec"]!["template"]!["metadata"]!["name"]));
    }

    [Fact]
    public async Task ApplyAsync_SameSpecTwice_KeepsTemplateNameAndGeneration()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);

        Assert.Equal(1, _kube.Get("services", "fn-abc")!["metadata"]!["generation"]!.GetValue<long>());
        Assert.Single(_kube.Names("revisions"));
    }

    [Fact]
    public async Task ApplyAsync_ConflictOnce_RereadsAndSucceeds()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.FailNext("PUT", $"{Services}/fn-abc", 409, "the object has been modified");

        await _backend.ApplyAsync(_region, Spec(null, Revision("latest", "ghcr.io/atelier/engine:2")), CancellationToken.None);

        Assert.Equal(2, _kube.Requests.Count(r => r == $"PUT {Services}/fn-abc"));
        Assert.Equal("ghcr.io/atelier/engine:2", Str(_kube.Get("services", "fn-abc")!["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]));
    }

    [Fact]
    public async Task ApplyAsync_ConflictEveryAttempt_ThrowsCustomResourceException()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.FailNext("PUT", $"{Services}/fn-abc", 409, "the object has been modified", times: 3);

        var e = await Assert.ThrowsAsync<CustomResourceException>(() => _backend.ApplyAsync(_region, Spec(null, Revision("latest", "x:2")), CancellationToken.None));

        Assert.Equal("Kube409", e.Code);
        Assert.Contains("the object has been modified", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_TrafficSplit_RoutesNinetyTenToTwoPublishedRevisions()
    {
        var spec = Spec([new TrafficTarget("v1", 90), new TrafficTarget("v2", 10)],
            Revision("v1", "x:1"), Revision("v2", "x:2"), Revision("latest", "x:3"));

        await _backend.ApplyAsync(_region, spec, CancellationToken.None);

        // Each missing published version was put in the template under its own name first, so Knative made its revision.
        Assert.Contains("fn-abc-v1", _kube.Names("revisions"));
        Assert.Contains("fn-abc-v2", _kube.Names("revisions"));
        Assert.Equal("x:1", Str(_kube.Get("revisions", "fn-abc-v1")!["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]));
        var service = _kube.Get("services", "fn-abc")!;
        Assert.Equal("x:3", Str(service["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]));
        var traffic = service["spec"]!["traffic"]!.AsArray();
        Assert.Equal(3, traffic.Count);
        Assert.Equal(("fn-abc-v1", 90, "v1"), (Str(traffic[0]!["revisionName"]), traffic[0]!["percent"]!.GetValue<int>(), Str(traffic[0]!["tag"])));
        Assert.Equal(("fn-abc-v2", 10, "v2"), (Str(traffic[1]!["revisionName"]), traffic[1]!["percent"]!.GetValue<int>(), Str(traffic[1]!["tag"])));
        Assert.True(traffic[2]!["latestRevision"]!.GetValue<bool>());
        Assert.Equal((0, "latest"), (traffic[2]!["percent"]!.GetValue<int>(), Str(traffic[2]!["tag"])));

        // The draft takes no share, so it is not kept warm.
        Assert.Equal("0", Str(service["spec"]!["template"]!["metadata"]!["annotations"]!["autoscaling.knative.dev/min-scale"]));

        using var lease = await _backend.AcquireAsync(_region, Key, "v2", TimeSpan.FromSeconds(1), CancellationToken.None);
        Assert.Equal(new Uri("http://v2-fn-abc.atelier.example.com"), lease.Destination);
        Assert.Equal("fn-abc-v2", lease.InstanceId);
    }

    [Fact]
    public async Task ApplyAsync_PublishedRevisionExists_IsNotWrittenAgain()
    {
        var spec = Spec([new TrafficTarget("v1", 100)], Revision("v1", "x:1"), Revision("latest", "x:1"));
        await _backend.ApplyAsync(_region, spec, CancellationToken.None);
        var writes = _kube.Requests.Count(r => r.StartsWith("PUT ", StringComparison.Ordinal) || r.StartsWith("POST ", StringComparison.Ordinal));

        await _backend.ApplyAsync(_region, spec, CancellationToken.None);

        Assert.Equal(writes + 1, _kube.Requests.Count(r => r.StartsWith("PUT ", StringComparison.Ordinal) || r.StartsWith("POST ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ApplyAsync_KnativeNotInstalled_ThrowsCustomResourceException()
    {
        _kube.KnativeInstalled = false;

        var e = await Assert.ThrowsAsync<CustomResourceException>(() => _backend.ApplyAsync(_region, Spec(), CancellationToken.None));

        Assert.Equal("Kube404", e.Code);
        Assert.Contains("Knative", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_Invalid422_ThrowsCustomResourceExceptionWithMessage()
    {
        _kube.FailNext("POST", Services, 422, "spec.template.spec.containers[0].resources: nvidia.com/gpu is not allowed here");

        var e = await Assert.ThrowsAsync<CustomResourceException>(() => _backend.ApplyAsync(_region, Spec(), CancellationToken.None));

        Assert.Equal("Kube422", e.Code);
        Assert.Contains("nvidia.com/gpu is not allowed here", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(500, "Kube500")]
    [InlineData(403, "Kube403")]
    public async Task ApplyAsync_ServerRefuses_ThrowsRuntimeExceptionNotCustomResource(int status, string code)
    {
        _kube.FailNext("GET", Services, status, "services.serving.knative.dev is forbidden or broken");

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ApplyAsync(_region, Spec(), CancellationToken.None));

        Assert.IsNotType<CustomResourceException>(e);
        Assert.Equal(code, e.Code);
        Assert.Contains("forbidden or broken", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_InvalidTraffic_ThrowsInvalidSpecWithoutCalling()
    {
        var spec = Spec([new TrafficTarget("latest", 90)]);

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ApplyAsync(_region, spec, CancellationToken.None));

        Assert.Equal(RuntimeErrors.InvalidSpec, e.Code);
        Assert.Empty(_kube.Requests);
    }

    [Fact]
    public async Task ApplyAsync_KnativeReportsFailure_ThrowsNeverHealthyWithReason()
    {
        _kube.ReadyStatus = "False";
        _kube.ReadyReason = "RevisionFailed";
        _kube.ReadyMessage = "Container failed with: exec format error";

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ApplyAsync(_region, Spec(), CancellationToken.None));

        Assert.Equal(RuntimeErrors.NeverHealthy, e.Code);
        Assert.Contains("RevisionFailed", e.Message, StringComparison.Ordinal);
        Assert.Contains("exec format error", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ApplyAsync_ReadyLater_ReturnsOnceReady()
    {
        _kube.ReadyStatus = "Unknown";
        var apply = _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        await Server.Tests.Infrastructure.Eventually.UntilAsync(() => _kube.Get("services", "fn-abc") is not null, "service written");
        Assert.False(apply.IsCompleted);

        _kube.SetReady("fn-abc", "True");

        await apply.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task ObserveAsync_Ready_ReportsReadyAndInstances()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        var revision = Assert.Single(_kube.Names("revisions"));
        _kube.SetReplicas(revision, desired: 3, actual: 2);

        var observed = await _backend.ObserveAsync(_region, Key, CancellationToken.None);

        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 3, 2), observed);
    }

    [Fact]
    public async Task ReadyInstancesAsync_CountsKnativesReadyPodsPerFunction_AndReadyReplicasPerWorkload_InOneLook()
    {
        Assert.Empty(await _backend.ReadyInstancesAsync(_region, CancellationToken.None));
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.SetReplicas(Assert.Single(_kube.Names("revisions")), desired: 3, actual: 2);
        await _backend.ApplyWorkloadAsync(_region, new WorkloadSpec { Name = "agent-u-1", Image = "ghcr.io/atelier/atelier:1", Replicas = 4 }, CancellationToken.None);

        var ready = await _backend.ReadyInstancesAsync(_region, CancellationToken.None);

        Assert.Equal(new Dictionary<string, int> { [Key.Name] = 2, ["agent-u-1"] = 4 }, ready);
    }

    [Fact]
    public async Task ObserveAsync_Failed_ReportsReason()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.SetReady("fn-abc", "False", "RevisionMissing", "revision fn-abc-v9 not found");

        var observed = await _backend.ObserveAsync(_region, Key, CancellationToken.None);

        Assert.Equal(FunctionPhase.Failed, observed.Phase);
        Assert.Equal("RevisionMissing: revision fn-abc-v9 not found", observed.Reason);
    }

    [Fact]
    public async Task ObserveAsync_Deploying_ReportsDeploying()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.SetReady("fn-abc", "Unknown", "Deploying");

        Assert.Equal(FunctionPhase.Deploying, (await _backend.ObserveAsync(_region, Key, CancellationToken.None)).Phase);
    }

    [Fact]
    public async Task ObserveAsync_NoService_ReportsAbsent()
    {
        var observed = await _backend.ObserveAsync(_region, Key, CancellationToken.None);

        Assert.Equal(new FunctionObservation(FunctionPhase.Absent, null, 0, 0), observed);
    }

    [Fact]
    public async Task ScaleAsync_Instances_SetsMinScaleAndZeroRestoresSpecMinimum()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        var first = Str(_kube.Get("services", "fn-abc")!["spec"]!["template"]!["metadata"]!["name"]);

        await _backend.ScaleAsync(_region, Key, 3, CancellationToken.None);

        var scaled = _kube.Get("services", "fn-abc")!;
        Assert.Equal("3", Str(scaled["spec"]!["template"]!["metadata"]!["annotations"]!["autoscaling.knative.dev/min-scale"]));
        Assert.NotEqual(first, Str(scaled["spec"]!["template"]!["metadata"]!["name"]));

        // A later apply (the reconciler) keeps the manual count.
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        Assert.Equal("3", Str(_kube.Get("services", "fn-abc")!["spec"]!["template"]!["metadata"]!["annotations"]!["autoscaling.knative.dev/min-scale"]));

        await _backend.ScaleAsync(_region, Key, 0, CancellationToken.None);

        var back = _kube.Get("services", "fn-abc")!;
        Assert.Equal("1", Str(back["spec"]!["template"]!["metadata"]!["annotations"]!["autoscaling.knative.dev/min-scale"]));
        Assert.Equal(first, Str(back["spec"]!["template"]!["metadata"]!["name"]));
    }

    [Fact]
    public async Task ScaleAsync_NoService_ThrowsNotDeployed()
    {
        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ScaleAsync(_region, Key, 2, CancellationToken.None));

        Assert.Equal(RuntimeErrors.NotDeployed, e.Code);
    }

    [Fact]
    public async Task MountDomainAsync_NewHost_CreatesTlsSecretAndDomainMappingAndUnmountRemovesBoth()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);

        await _backend.MountDomainAsync(_region, Key, new DomainSpec("Images.Example.com", "CERT PEM", "KEY PEM"), CancellationToken.None);

        var secret = _kube.Get("secrets", "images-example-com-tls")!;
        Assert.Equal("kubernetes.io/tls", Str(secret["type"]));
        Assert.Equal("CERT PEM", Encoding.UTF8.GetString(Convert.FromBase64String(Str(secret["data"]!["tls.crt"])!)));
        Assert.Equal("KEY PEM", Encoding.UTF8.GetString(Convert.FromBase64String(Str(secret["data"]!["tls.key"])!)));
        var mapping = _kube.Get("domainmappings", "images.example.com")!;
        Assert.Equal("serving.knative.dev/v1beta1", Str(mapping["apiVersion"]));
        Assert.Equal("fn-abc", Str(mapping["spec"]!["ref"]!["name"]));
        Assert.Equal("Service", Str(mapping["spec"]!["ref"]!["kind"]));
        Assert.Equal("serving.knative.dev/v1", Str(mapping["spec"]!["ref"]!["apiVersion"]));
        Assert.Equal("images-example-com-tls", Str(mapping["spec"]!["tls"]!["secretName"]));

        // Mounting again (a renewed certificate) replaces the secret.
        await _backend.MountDomainAsync(_region, Key, new DomainSpec("images.example.com", "CERT 2", "KEY 2"), CancellationToken.None);
        Assert.Equal("CERT 2", Encoding.UTF8.GetString(Convert.FromBase64String(Str(_kube.Get("secrets", "images-example-com-tls")!["data"]!["tls.crt"])!)));

        await _backend.UnmountDomainAsync(_region, Key, "images.example.com", CancellationToken.None);

        Assert.Null(_kube.Get("secrets", "images-example-com-tls"));
        Assert.Null(_kube.Get("domainmappings", "images.example.com"));
    }

    [Fact]
    public async Task UnmountDomainAsync_NotMounted_Succeeds()
    {
        await _backend.UnmountDomainAsync(_region, Key, "nothing.example.com", CancellationToken.None);
    }

    [Fact]
    public async Task DeleteAsync_Mounted_RemovesServiceDomainMappingsAndSecrets()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        await _backend.MountDomainAsync(_region, Key, new DomainSpec("a.example.com", "C", "K"), CancellationToken.None);
        await _backend.MountDomainAsync(_region, Key, new DomainSpec("b.example.com", "C", "K"), CancellationToken.None);

        await _backend.DeleteAsync(_region, Key, CancellationToken.None);

        Assert.Empty(_kube.Names("services"));
        Assert.Empty(_kube.Names("domainmappings"));
        Assert.Empty(_kube.Names("secrets"));
        Assert.Empty(_kube.Names("revisions"));
        Assert.Equal(FunctionPhase.Absent, (await _backend.ObserveAsync(_region, Key, CancellationToken.None)).Phase);
    }

    [Fact]
    public async Task DeleteAsync_Absent_Succeeds()
    {
        await _backend.DeleteAsync(_region, Key, CancellationToken.None);
    }

    [Fact]
    public async Task AcquireAsync_Latest_ReturnsLatestTagUrl()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);

        using var lease = await _backend.AcquireAsync(_region, Key, "latest", TimeSpan.FromSeconds(1), CancellationToken.None);

        Assert.Equal(new Uri("http://latest-fn-abc.atelier.example.com"), lease.Destination);
        lease.ReportFailure();
    }

    [Fact]
    public async Task AcquireAsync_NotReady_ThrowsNotDeployed()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);
        _kube.SetReady("fn-abc", "False", "RevisionFailed", "boom");

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(async () => await _backend.AcquireAsync(_region, Key, "latest", TimeSpan.FromSeconds(1), CancellationToken.None));

        Assert.Equal(RuntimeErrors.NotDeployed, e.Code);
    }

    [Fact]
    public async Task AcquireAsync_UnknownRevision_ThrowsUnknownRevision()
    {
        await _backend.ApplyAsync(_region, Spec(), CancellationToken.None);

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(async () => await _backend.AcquireAsync(_region, Key, "v7", TimeSpan.FromSeconds(1), CancellationToken.None));

        Assert.Equal(RuntimeErrors.UnknownRevision, e.Code);
    }

    [Fact]
    public async Task ObserveAsync_BadToken_ThrowsKube401WithoutToken()
    {
        var region = new RuntimeRegion("eu-1", "kubernetes", _kube.KubeConfig(token: "wrong-token-123"));

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ObserveAsync(region, Key, CancellationToken.None));

        Assert.IsNotType<CustomResourceException>(e);
        Assert.Equal("Kube401", e.Code);
        Assert.DoesNotContain("wrong-token-123", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ObserveAsync_NoKubeConfig_ThrowsKubeConfigMissing()
    {
        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ObserveAsync(new RuntimeRegion("eu-2", "kubernetes"), Key, CancellationToken.None));

        Assert.Equal("KubeConfigMissing", e.Code);
    }

    [Fact]
    public async Task ObserveAsync_UnreachableServer_ThrowsKubeUnreachable()
    {
        // A stand-in that was started and stopped leaves a loopback address where nothing listens.
        var gone = await KubeStandIn.StartAsync();
        var region = new RuntimeRegion("eu-3", "kubernetes", gone.KubeConfig());
        await gone.DisposeAsync();

        var e = await Assert.ThrowsAnyAsync<RuntimeException>(() => _backend.ObserveAsync(region, Key, CancellationToken.None));

        Assert.Equal("KubeUnreachable", e.Code);
    }

    [Fact]
    public async Task ApplyAsync_Timers_CreatesPingSourcesToTheServiceAndRemovesDroppedOnes()
    {
        Assert.True(_backend.SchedulesTimers);
        await _backend.ApplyAsync(_region, Spec() with { Timers = [new TimerSpec("tick", "*/5 * * * *", "{\"n\":1}"), new TimerSpec("nightly", "0 3 * * *", "{}")] },
            CancellationToken.None);
        var tick = _kube.Get("pingsources", $"{Key.Name}-tick")!;
        Assert.Equal("*/5 * * * *", Str(tick["spec"]!["schedule"]));
        Assert.Equal("{\"n\":1}", Str(tick["spec"]!["data"]));
        Assert.Equal(Key.Name, Str(tick["spec"]!["sink"]!["ref"]!["name"]));
        Assert.Equal("Service", Str(tick["spec"]!["sink"]!["ref"]!["kind"]));
        Assert.Equal(Key.Name, Str(tick["metadata"]!["labels"]!["atelier.dev/function"]));

        await _backend.ApplyAsync(_region, Spec() with { Timers = [new TimerSpec("nightly", "0 4 * * *", "{}")] }, CancellationToken.None);
        Assert.Null(_kube.Get("pingsources", $"{Key.Name}-tick"));
        Assert.Equal("0 4 * * *", Str(_kube.Get("pingsources", $"{Key.Name}-nightly")!["spec"]!["schedule"]));

        await _backend.DeleteAsync(_region, Key, CancellationToken.None);
        Assert.Null(_kube.Get("pingsources", $"{Key.Name}-nightly"));
    }
}
