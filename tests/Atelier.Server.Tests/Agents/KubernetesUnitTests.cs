using System.Net;
using System.Text;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Runtime.Kubernetes.Tests;
using Atelier.Server.Tests.Functions;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Agents;

/// <summary>A kubernetes region (the stand-in API server) whose units' workers reach the server at a public address.</summary>
public sealed class KubeAgentsHost : KubeHost
{
    public const string ServerUrl = "https://atelier.example.test";

    protected override IReadOnlyDictionary<string, string> ExtraSettings { get; } = new Dictionary<string, string>
    {
        ["Atelier:Agents:ScaleIntervalSeconds"] = "1",
        ["Atelier:Agents:ServerUrl"] = ServerUrl,
    };
}

/// <summary>
/// Units in a kubernetes region, against the stand-in API server through the real client library: a Deployment with the
/// instance type's node selector and GPU limits, the worker key in a Secret, replicas through the scale subresource,
/// and a refused scale call recorded, retried with backoff and shown by the API.
/// </summary>
public class KubernetesUnitTests(KubeAgentsHost shared) : IClassFixture<KubeAgentsHost>
{
    private TestHost Host => shared.Host;
    private KubeStandIn Kube => shared.Kube;

    [Fact]
    public async Task Unit_IsADeployment_WithItsKeyInASecret_ScaledThroughTheScaleSubresource_AndARefusedScaleIsRetried()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var selector = new Dictionary<string, string> { ["node.kubernetes.io/instance-type"] = "a10" };
        var pool = (await Host.Admin().PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "gpus-" + Guid.NewGuid().ToString("N")[..6],
            regions = new[] { new { region = shared.Region, instanceTypes = new[] { new { name = "a10", capacity = 4, slotsPerReplica = 2, gpus = 1, nodeSelector = selector } } } },
        })).Created().GetProperty("id").GetString()!;
        var st = (await admin.PostAsync("/api/v1/scale-templates", new { name = "gpu", minReplicas = 0, maxReplicas = 4, scaleDownWindowSeconds = 600 }))
            .Created().GetProperty("id").GetString()!;
        var agent = (await admin.PostAsync("/api/v1/agents", new { name = "render" })).Created().GetProperty("id").GetString()!;
        var version = (await admin.PostAsync($"/api/v1/agents/{agent}/versions", new
        {
            versionName = "v1", image = "registry.example/atelier:1.0", engine = "a1111=http://127.0.0.1:7860", autoScaleTemplateId = st,
            environment = new Dictionary<string, string> { ["HF_HOME"] = "/cache" },
        })).Created().GetProperty("id").GetString()!;
        var units = $"/api/v1/agents/{agent}/units";
        var unit = (await admin.PostAsync(units, new { agentVersionId = version, computingPoolId = pool, region = shared.Region, instanceType = "a10", replicas = 0 })).Created();
        var unitId = unit.GetProperty("id").GetString()!;
        var name = unit.GetProperty("function").GetProperty("name").GetString()!;

        // Three jobs at two slots a replica: two replicas.
        var app = world.AppOf(Host);
        for (var i = 0; i < 3; i++)
        {
            (await app.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = "a tower", steps = 1 } })).Ok(HttpStatusCode.Accepted);
        }

        var deployment = await Eventually.ValueAsync(() => Task.FromResult(Kube.Get("deployments", name)),
            d => d?["spec"]?["replicas"]?.GetValue<int>() == 2, "a Deployment with two replicas");
        var pod = deployment!["spec"]!["template"]!["spec"]!;
        Assert.Equal("a10", pod["nodeSelector"]!["node.kubernetes.io/instance-type"]!.GetValue<string>());
        var container = pod["containers"]![0]!;
        Assert.Equal("registry.example/atelier:1.0", container["image"]!.GetValue<string>());
        Assert.Equal("1", container["resources"]!["limits"]!["nvidia.com/gpu"]!.GetValue<string>());
        var args = container["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.Equal(["worker", "--server", KubeAgentsHost.ServerUrl, "--engine", "a1111=http://127.0.0.1:7860", "--slots", "2"], args);
        Assert.Equal(name, container["envFrom"]![0]!["secretRef"]!["name"]!.GetValue<string>());
        Assert.DoesNotContain("atw_", deployment.ToJsonString(), StringComparison.Ordinal);

        // The worker key is in the Secret only, and it is the unit's key.
        var secret = Kube.Get("secrets", name)!;
        var token = Encoding.UTF8.GetString(Convert.FromBase64String(secret["data"]!["ATELIER_WORKER_TOKEN"]!.GetValue<string>()));
        var keys = (await admin.GetAsync($"{units}/{unitId}/worker-keys")).Ok();
        Assert.StartsWith(keys[0].GetProperty("displayPrefix").GetString()!, token, StringComparison.Ordinal);
        (await Host.Client.With(token).PostAsync("/api/v1/worker/register", new { workerId = "pod-1", engine = "a1111", slots = 2 })).Ok();

        // Five more jobs want four replicas; the API server refuses the first two scale calls.
        var scalePath = $"/apis/apps/v1/namespaces/atelier/deployments/{name}/scale";
        Kube.FailNext("PATCH", scalePath, 500, "etcdserver: request timed out", times: 2);
        for (var i = 0; i < 5; i++)
        {
            (await app.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = "a bridge", steps = 1 } })).Ok(HttpStatusCode.Accepted);
        }

        var failed = await Eventually.ValueAsync(async () => (await admin.GetAsync($"{units}/{unitId}/scaling")).Ok(),
            s => s.GetProperty("scaleFailures").GetInt32() >= 1, "the refused scale call recorded on the unit");
        Assert.Contains("etcdserver", failed.GetProperty("scaleError").GetString(), StringComparison.Ordinal);
        Assert.Contains(failed.GetProperty("decisions").EnumerateArray(), d => d.GetProperty("error").GetString()?.Contains("Kube500", StringComparison.Ordinal) == true);

        var scaled = await Eventually.ValueAsync(async () => (await admin.GetAsync($"{units}/{unitId}/scaling")).Ok(),
            s => s.GetProperty("replicas").GetInt32() == 4 && s.GetProperty("scaleError").ValueKind == JsonValueKind.Null, "the retried scale to four replicas");
        Assert.Equal(4, scaled.GetProperty("readyReplicas").GetInt32());
        Assert.Equal(4, Kube.Get("deployments", name)!["spec"]!["replicas"]!.GetValue<int>());
        Assert.Contains("PATCH " + scalePath, Kube.Requests);
        Assert.Contains(scaled.GetProperty("decisions").EnumerateArray(), d => d.GetProperty("to").GetInt32() == 4 && d.GetProperty("applied").GetBoolean());

        // Removing the unit removes the Deployment and the Secret, and its key stops working.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"{units}/{unitId}")).Status);
        Assert.Null(Kube.Get("deployments", name));
        Assert.Null(Kube.Get("secrets", name));
        (await Host.Client.With(token).PostAsync("/api/v1/worker/register", new { workerId = "pod-1", engine = "a1111", slots = 2 })).Error(ErrorCatalog.b_session_tokennotvalid);
    }

    /// <summary>The built-in engine on a GPU instance type gets <c>--device cuda</c>; on a CPU type, or when the version names its own device, nothing is added.</summary>
    [Fact]
    public async Task BuiltinEngine_OnAGpuInstanceType_RunsOnCuda_UnlessTheVersionNamesItsDevice()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var pool = (await Host.Admin().PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "mixed-" + Guid.NewGuid().ToString("N")[..6],
            regions = new[]
            {
                new
                {
                    region = shared.Region,
                    instanceTypes = new[]
                    {
                        new { name = "l4", capacity = 4, slotsPerReplica = 1, gpus = 1, nodeSelector = new Dictionary<string, string> { ["gpu"] = "l4" } },
                        new { name = "cpu", capacity = 4, slotsPerReplica = 1, gpus = 0, nodeSelector = new Dictionary<string, string> { ["gpu"] = "none" } },
                    },
                },
            },
        })).Created().GetProperty("id").GetString()!;
        var st = (await admin.PostAsync("/api/v1/scale-templates", new { name = "paint", minReplicas = 0, maxReplicas = 2, scaleDownWindowSeconds = 600 }))
            .Created().GetProperty("id").GetString()!;
        var agent = (await admin.PostAsync("/api/v1/agents", new { name = "paint" })).Created().GetProperty("id").GetString()!;

        async Task<List<string>> ArgsOf(string instanceType, string[] versionArgs)
        {
            var version = (await admin.PostAsync($"/api/v1/agents/{agent}/versions", new
            {
                versionName = "v" + Guid.NewGuid().ToString("N")[..6], image = "registry.example/atelier-cuda:1.0", engine = "builtin", args = versionArgs, autoScaleTemplateId = st,
            })).Created().GetProperty("id").GetString()!;
            var unit = (await admin.PostAsync($"/api/v1/agents/{agent}/units", new { agentVersionId = version, computingPoolId = pool, region = shared.Region, instanceType, replicas = 1 }))
                .Created();
            var name = unit.GetProperty("function").GetProperty("name").GetString()!;
            var deployment = await Eventually.ValueAsync(() => Task.FromResult(Kube.Get("deployments", name)), d => d is not null, "the unit's Deployment");
            return [.. deployment!["spec"]!["template"]!["spec"]!["containers"]![0]!["args"]!.AsArray().Select(a => a!.GetValue<string>())];
        }

        Assert.Equal(["--slots", "1", "--device", "cuda"], (await ArgsOf("l4", []))[^4..]);
        Assert.DoesNotContain("--device", await ArgsOf("cpu", []));
        var own = await ArgsOf("l4", ["--device", "cuda:1"]);
        Assert.Equal(["--device", "cuda:1"], own[^2..]);
        Assert.Single(own, a => a == "--device");
    }
}
