using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Runtime.Kubernetes.Tests;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Functions;

/// <summary>
/// A server with a kubernetes region on the Kubernetes API stand-in (no API server can run here; see docs/kubernetes.md).
/// Its reconciler passes only at start, so an injected fault meets the API call under test and nothing else.
/// </summary>
public class KubeHost : IAsyncLifetime
{
    protected virtual int ReconcileIntervalSeconds => 3600;

    protected virtual IReadOnlyDictionary<string, string> ExtraSettings { get; } = new Dictionary<string, string>();

    public TestHost Host { get; private set; } = null!;
    public KubeStandIn Kube { get; private set; } = null!;
    public string Region { get; } = "kube-" + Guid.NewGuid().ToString("N")[..6];

    public async ValueTask InitializeAsync()
    {
        Kube = await KubeStandIn.StartAsync();
        var settings = new Dictionary<string, string>(FunctionsHost.Settings)
        {
            ["Atelier:Functions:ReconcileIntervalSeconds"] = ReconcileIntervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        foreach (var (key, value) in ExtraSettings)
        {
            settings[key] = value;
        }

        Host = await TestHost.StartAsync(settings);
        var admin = Host.Admin();
        var kc = (await admin.PostAsync("/api/v1/platform/kube-configs", new { name = Region, kubeConfig = Kube.KubeConfig() })).Created();
        (await admin.PostAsync("/api/v1/platform/regions", new { name = Region, backend = "kubernetes", kubeConfigId = kc.GetProperty("id").GetString() })).Created();
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Kube.DisposeAsync();
    }
}

/// <summary>
/// Functions on a kubernetes region: each operation's call to the API server is made to fail (500, 403, 422, a missing
/// API group) and must answer that operation's code with the server's status in errCode, leaving nothing half done.
/// </summary>
public class KubernetesFunctionTests(KubeHost shared) : IClassFixture<KubeHost>
{
    private const string Services = "/apis/serving.knative.dev/v1/namespaces/atelier/services";
    private const string Secrets = "/api/v1/namespaces/atelier/secrets";
    private const string DomainMappings = "/apis/serving.knative.dev/v1beta1/namespaces/atelier/domainmappings";

    private TestHost Host => shared.Host;
    private KubeStandIn Kube => shared.Kube;

    private object Open(string name) => new { name, region = shared.Region, image = "ghcr.io/example/engine:1", port = 8080, healthPath = "/health", instanceConcurrency = 4 };

    private async Task<(TenantWorld World, ApiClient Admin, string Fn)> FunctionAsync(string name)
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "k" })).Created();
        (await admin.PostAsync("/api/v1/services/k/functions", Open(name))).Created();
        return (world, admin, $"/api/v1/services/k/functions/{name}");
    }

    private static void Cause(ApiResult result, ErrorCode code, string errCode) =>
        Assert.Equal(errCode, result.Error(code).GetProperty("errCode").GetString());

    [Fact]
    public async Task Region_KubernetesWithoutItsKubeConfig_AnswersKubeConfigNotExist()
    {
        var admin = Host.Admin();
        (await admin.PostAsync("/api/v1/platform/regions", new { name = "no-kc", backend = "kubernetes" })).Error(ErrorCatalog.b_kube_kubeconfignotexist);
        (await admin.PostAsync("/api/v1/platform/regions", new { name = "no-kc", backend = "kubernetes", kubeConfigId = "kc_missing" })).Error(ErrorCatalog.b_kube_kubeconfignotexist);
        var e = (await admin.PostAsync("/api/v1/platform/regions", new { name = "odd", backend = "nomad" })).Error(ErrorCatalog.p_common_inputinvalid);
        Assert.Contains("kubernetes, local", e.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        // The kube config is never returned: only its cluster's address.
        var listed = (await admin.GetAsync("/api/v1/platform/kube-configs")).Ok().GetRawText();
        Assert.DoesNotContain(Kube.Token, listed, StringComparison.Ordinal);
        Assert.Contains(Kube.Address.Authority, listed, StringComparison.Ordinal);
        // A kube config a region uses cannot go, and a tenant token cannot read any of it.
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AdminOf(Host).GetAsync("/api/v1/platform/kube-configs")).Error(ErrorCatalog.b_session_tokenforbidden);
    }

    [Fact]
    public async Task StoredRegion_WithABackendThisBuildLacks_StopsTheStart_ListingTheKnownOnes()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using (var first = await TestHost.StartAsync(database: db))
        {
            using var scope = first.Services.CreateScope();
            var data = scope.ServiceProvider.GetRequiredService<Atelier.Data.AtelierDb>();
            data.Regions.Add(new Atelier.Data.Entities.Region { Name = "mars-1", Backend = "nomad" });
            await data.SaveChangesAsync();
        }

        var error = await Assert.ThrowsAsync<Atelier.Server.Hosting.InvalidConfigurationException>(() => TestHost.StartAsync(database: db));
        Assert.Contains("Region mars-1 (nomad): no such runtime backend; known: kubernetes, local", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OpenFunction_CreateRefused_StoresNothing_AndCrdRejectionsAreKubeCrdErrors()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "k" })).Created();
        Kube.FailNext("POST", Services, 500, "etcd is unavailable");
        Cause(await admin.PostAsync("/api/v1/services/k/functions", Open("one")), ErrorCatalog.s_function_createopenfunctionerror, "Kube500");
        Kube.FailNext("POST", Services, 422, "spec.template: invalid value");
        var crd = (await admin.PostAsync("/api/v1/services/k/functions", Open("one"))).Error(ErrorCatalog.s_kube_crderror);
        Assert.Contains("invalid value", crd.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        Kube.KnativeInstalled = false;
        try
        {
            (await admin.PostAsync("/api/v1/services/k/functions", Open("one"))).Error(ErrorCatalog.s_kube_crderror);
        }
        finally
        {
            Kube.KnativeInstalled = true;
        }

        Assert.Equal(0, (await admin.GetAsync("/api/v1/services/k/functions")).Ok().GetProperty("total").GetInt32());
        var created = (await admin.PostAsync("/api/v1/services/k/functions", Open("one"))).Created();
        var key = "fn-" + created.GetProperty("id").GetString()!["fn_".Length..];
        var service = Kube.Get("services", key)!;
        Assert.Equal("4", service["spec"]!["template"]!["spec"]!["containerConcurrency"]!.ToString());
    }

    [Fact]
    public async Task OpenFunction_EachFailedCall_AnswersItsOperationsCode()
    {
        var (world, admin, fn) = await FunctionAsync("ops");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.GetAsync("/api/v1/services/k/functions"), ErrorCatalog.s_function_listopenfunctionerror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn, Open("ops")), ErrorCatalog.s_function_updateopenfunctionerror, "Kube500");
        Kube.FailNext("GET", Services, 403, "forbidden");
        Cause(await admin.PostAsync(fn + "/scale", new { instances = 2 }), ErrorCatalog.s_function_scaleopenfunctionerror, "Kube403");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PostAsync(fn + "/versions", new { }), ErrorCatalog.s_function_publishfunctionversionerror, "Kube500");
        (await admin.PostAsync(fn + "/versions", new { })).Created();
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.GetAsync(fn + "/versions"), ErrorCatalog.s_function_listfunctionversionserror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PostAsync(fn + "/aliases", new { name = "prod", versionId = 1 }), ErrorCatalog.s_function_createaliaserror, "Kube500");
        (await admin.PostAsync(fn + "/aliases", new { name = "prod", versionId = 1 })).Created();
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn + "/aliases/prod", new { versionId = 1 }), ErrorCatalog.s_function_updatealiaserror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PostAsync(fn + "/triggers", new { name = "web", type = "http" }), ErrorCatalog.s_function_createtriggererror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn + "/async-invoke-config", new { destinationConfig = new { onSuccess = new { destination = "function:k/ops" } } }),
            ErrorCatalog.s_function_putasyncinvokeconfigerror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn + "/provision-config", new { target = 1 }), ErrorCatalog.s_function_createprovisionconfigerror, "Kube500");
        (await admin.PutAsync(fn + "/provision-config", new { target = 1 })).Ok();
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn + "/provision-config", new { target = 2 }), ErrorCatalog.s_function_putprovisionconfigerror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.GetAsync(fn + "/provision-config"), ErrorCatalog.s_function_getprovisionconfigerror, "Kube500");
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.DeleteAsync(fn + "/provision-config"), ErrorCatalog.s_function_deleteprovisionconfigerror, "Kube500");
        Assert.Equal(1, (await admin.GetAsync(fn + "/provision-config")).Ok().GetProperty("target").GetInt32());
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync(fn + "/concurrency-config", new { reservedConcurrency = 3 }), ErrorCatalog.s_function_putconcurrencyconfigerror, "Kube500");
        Assert.Equal(0, (await admin.GetAsync(fn + "/concurrency-config")).Ok().GetProperty("reservedConcurrency").GetInt32());
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await world.AppOf(Host).PostAsync("/api/v1/services/k/functions/ops/invoke?path=/sdapi/v1/options", new { }), ErrorCatalog.s_function_invokeopenfunctionerror, "Kube500");

        var (cert, key) = Certificates.SelfSigned("ops.example.test");
        Kube.FailNext("GET", Secrets, 500, "secrets are broken");
        Cause(await admin.PostAsync(fn + "/custom-domains", new { domainName = "ops.example.test", certificate = cert, privateKey = key }), ErrorCatalog.s_function_mountdomainerror, "Kube500");
        Assert.Empty((await admin.GetAsync(fn + "/custom-domains")).Ok().EnumerateArray());
        (await admin.PostAsync(fn + "/custom-domains", new { domainName = "ops.example.test", certificate = cert, privateKey = key })).Created();
        Assert.NotNull(Kube.Get("domainmappings", "ops.example.test"));
        Kube.FailNext("DELETE", DomainMappings, 500, "webhook failed");
        Cause(await admin.DeleteAsync(fn + "/custom-domains/ops.example.test"), ErrorCatalog.s_function_unmountdomainerror, "Kube500");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(fn + "/custom-domains/ops.example.test")).Status);
        Assert.Null(Kube.Get("domainmappings", "ops.example.test"));

        // A failed delete leaves the function, to be deleted again.
        Kube.FailNext("DELETE", Services, 500, "apiserver overloaded");
        Cause(await admin.DeleteAsync(fn), ErrorCatalog.s_function_deleteopenfunctionerror, "Kube500");
        (await admin.GetAsync(fn)).Ok();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(fn)).Status);
        (await admin.GetAsync(fn)).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }

    [Fact]
    public async Task TimerTrigger_OnKubernetes_IsAPingSource_AndARefusedOneIsNotKept()
    {
        var (_, admin, fn) = await FunctionAsync("timed");
        var key = "fn-" + (await admin.GetAsync(fn)).Ok().GetProperty("id").GetString()!["fn_".Length..];
        Kube.FailNext("POST", "/apis/sources.knative.dev/v1/namespaces/atelier/pingsources", 500, "eventing webhook down");
        Cause(await admin.PostAsync(fn + "/triggers", new { name = "tick", type = "timer", cron = "*/5 * * * *", payload = "{}" }), ErrorCatalog.s_function_createtriggererror, "Kube500");
        Assert.Empty((await admin.GetAsync(fn + "/triggers")).Ok().EnumerateArray());
        Kube.FailNext("POST", "/apis/sources.knative.dev/v1/namespaces/atelier/pingsources", 422, "spec.schedule: invalid");
        (await admin.PostAsync(fn + "/triggers", new { name = "tick", type = "timer", cron = "*/5 * * * *", payload = "{}" })).Error(ErrorCatalog.s_kube_crderror);

        (await admin.PostAsync(fn + "/triggers", new { name = "tick", type = "timer", cron = "*/5 * * * *", payload = "{\"go\":true}" })).Created();
        var source = Kube.Get("pingsources", $"{key}-tick")!;
        Assert.Equal("*/5 * * * *", source["spec"]!["schedule"]!.ToString());
        Assert.Equal("{\"go\":true}", source["spec"]!["data"]!.ToString());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(fn + "/triggers/tick")).Status);
        Assert.Null(Kube.Get("pingsources", $"{key}-tick"));
    }

    [Fact]
    public async Task ByTemplate_OnKubernetes_FailedCallsAnswerTheByTemplateCodes()
    {
        var templateId = (await Host.Admin().PostAsync("/api/v1/platform/function-templates", new
        {
            name = "img-" + Guid.NewGuid().ToString("N")[..8], engine = "a1111", image = "ghcr.io/example/{{flavour}}:1", port = 7860, healthPath = "/sdapi/v1/options",
            parametersSchema = System.Text.Json.JsonDocument.Parse("""{"type":"object","properties":{"flavour":{"type":"string","enum":["webui","forge"],"default":"webui"}}}""").RootElement,
        })).Created().GetProperty("id").GetString()!;
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "k" })).Created();
        Kube.FailNext("POST", Services, 500, "etcd is unavailable");
        Cause(await admin.PostAsync("/api/v1/services/k/functions/by-template", new { name = "tpl", templateId, region = shared.Region, instanceParameters = new { } }),
            ErrorCatalog.s_function_createfunctionerror, "Kube500");
        var created = (await admin.PostAsync("/api/v1/services/k/functions/by-template", new { name = "tpl", templateId, region = shared.Region, instanceParameters = new { } })).Created();
        var key = "fn-" + created.GetProperty("id").GetString()!["fn_".Length..];
        Assert.Equal("ghcr.io/example/webui:1", Kube.Get("services", key)!["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]!.ToString());
        Kube.FailNext("GET", Services, 500, "apiserver overloaded");
        Cause(await admin.PutAsync("/api/v1/services/k/functions/tpl/by-template", new { instanceParameters = new { flavour = "forge" } }), ErrorCatalog.s_function_updatefunctionerror, "Kube500");
        (await admin.PutAsync("/api/v1/services/k/functions/tpl/by-template", new { instanceParameters = new { flavour = "forge" } })).Ok();
        Assert.Equal("ghcr.io/example/forge:1", Kube.Get("services", key)!["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]!.ToString());
        Kube.FailNext("DELETE", Services, 500, "apiserver overloaded");
        Cause(await admin.DeleteAsync("/api/v1/services/k/functions/tpl/by-template"), ErrorCatalog.s_function_deletefunctionerror, "Kube500");
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync("/api/v1/services/k/functions/tpl/by-template")).Status);
        Assert.Null(Kube.Get("services", key));
    }
}

/// <summary>The same region with a reconciler that passes every second.</summary>
public sealed class ReconcilingKubeHost : KubeHost
{
    protected override int ReconcileIntervalSeconds => 1;
}

/// <summary>What the reconciler does with a function whose Knative revision fails.</summary>
public class KubernetesReconcileTests(ReconcilingKubeHost shared) : IClassFixture<ReconcilingKubeHost>
{
    private TestHost Host => shared.Host;
    private KubeStandIn Kube => shared.Kube;

    [Fact]
    public async Task FailedRevision_TheReconcilerMarksTheFunctionFailed_AndCallsAnswerStateInvalid()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name = "k" })).Created();
        (await admin.PostAsync("/api/v1/services/k/functions", new { name = "sick", region = shared.Region, image = "ghcr.io/example/engine:1", port = 8080 })).Created();
        const string fn = "/api/v1/services/k/functions/sick";
        var key = "fn-" + (await admin.GetAsync(fn)).Ok().GetProperty("id").GetString()!["fn_".Length..];
        Kube.ReadyStatus = "False";
        Kube.ReadyReason = "RevisionFailed";
        Kube.ReadyMessage = "Container failed with: exec format error";
        try
        {
            Kube.SetReady(key, "False", "RevisionFailed", "Container failed with: exec format error");
            var failed = await Eventually.ValueAsync(async () => (await admin.GetAsync(fn)).Ok(), f => f.GetProperty("state").GetString() == "failed", "the reconciler saw the failure");
            Assert.Contains("exec format error", failed.GetProperty("stateReason").GetString(), StringComparison.Ordinal);
            (await world.AppOf(Host).PostAsync("/api/v1/services/k/functions/sick/invoke", new { })).Error(ErrorCatalog.s_fc_stateinvalid);
            (await admin.PostAsync(fn + "/scale", new { instances = 1 })).Error(ErrorCatalog.s_fc_stateinvalid);
        }
        finally
        {
            Kube.ReadyStatus = "True";
            Kube.ReadyReason = null;
            Kube.ReadyMessage = null;
        }

        await Eventually.UntilAsync(async () => (await admin.GetAsync(fn)).Ok().GetProperty("state").GetString() == "ready", "the reconciler applied it again");
    }
}
