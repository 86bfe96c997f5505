using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Functions;

/// <summary>A server whose reconciler and async runner look often, with a short start timeout for instances that never become healthy.</summary>
public sealed class FunctionsHost : IAsyncLifetime
{
    public static readonly Dictionary<string, string> Settings = new()
    {
        ["Atelier:Functions:ReconcileIntervalSeconds"] = "1",
        ["Atelier:Functions:PollIntervalSeconds"] = "1",
        ["Atelier:Functions:LocalStartTimeoutSeconds"] = "15",
        ["Atelier:Functions:LocalStopGraceSeconds"] = "2",
    };

    public TestHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await TestHost.StartAsync(Settings);

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>Functions on the local backend: real child processes (the test instance program), the router over real HTTP.</summary>
public class LocalFunctionTests(FunctionsHost shared) : IClassFixture<FunctionsHost>
{
    private TestHost Host => shared.Host;

    private async Task<(TenantWorld World, ApiClient Admin, string Service)> ServiceAsync(string name = "studio")
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/services", new { name })).Created();
        return (world, admin, name);
    }

    private static string Fn(string service, string function = "") => $"/api/v1/services/{service}/functions{(function.Length == 0 ? "" : "/" + function)}";

    [Fact]
    public async Task OpenFunction_CreateInvokeThroughRouter_AnswersFromTheInstance()
    {
        var (world, admin, svc) = await ServiceAsync();
        var created = (await admin.PostAsync(Fn(svc), FunctionInstance.Open("hello", new Dictionary<string, string> { ["TEST_GREETING"] = "bonjour" }))).Created();
        Assert.Equal("ready", created.GetProperty("state").GetString());
        Assert.StartsWith("fn_", created.GetProperty("id").GetString(), StringComparison.Ordinal);

        var (status, body, text) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/hello/", world.AppToken);
        Assert.True(status == HttpStatusCode.OK, text);
        Assert.Equal("bonjour", body.GetProperty("greeting").GetString());
        // The instance never sees the caller's credential.
        var (_, _, auth) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/hello/env/PORT", world.AppToken);
        Assert.Matches("^[0-9]+$", auth);

        // Unauthenticated: the envelope's 401, not the instance.
        var (anon, _, anonText) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/hello/", null);
        Assert.Equal(HttpStatusCode.Unauthorized, anon);
        Assert.Contains("p_common_apitokenrequired", anonText, StringComparison.Ordinal);

        var list = (await admin.GetAsync(Fn(svc))).Ok();
        Assert.Equal("ready", list.GetProperty("items")[0].GetProperty("runtime").GetProperty("phase").GetString());
    }

    [Fact]
    public async Task OpenFunction_OtherTenant_CannotSeeOrInvokeIt()
    {
        var (_, admin, svc) = await ServiceAsync("private");
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("mine"))).Created();
        var other = await Scenario.NewTenantAsync(Host);
        (await other.AdminOf(Host).GetAsync(Fn(svc, "mine"))).Error(ErrorCatalog.p_common_inputinvalid, 404);
        var (status, _, text) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/mine/", other.AppToken);
        Assert.True(status == HttpStatusCode.NotFound, text);
    }

    [Fact]
    public async Task OpenFunction_CommandMissingOrExitsAtStart_FailsCleanlyAndStoresNothing()
    {
        var (_, admin, svc) = await ServiceAsync();
        var missing = FunctionInstance.Open("ghost");
        missing["command"] = "/nonexistent/atelier-no-such-program";
        var e = (await admin.PostAsync(Fn(svc), missing)).Error(ErrorCatalog.s_function_createopenfunctionerror);
        Assert.Equal("CommandNotFound", e.GetProperty("errCode").GetString());

        e = (await admin.PostAsync(Fn(svc), FunctionInstance.Open("dies", new Dictionary<string, string> { ["TEST_EXIT_AT_START"] = "3" })))
            .Error(ErrorCatalog.s_function_createopenfunctionerror);
        Assert.Equal("ExitedAtStart", e.GetProperty("errCode").GetString());
        Assert.Equal(0, (await admin.GetAsync(Fn(svc))).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task OpenFunction_UpdateThatNeverBecomesHealthy_FailsAndTheOldOneStillServes()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("keep", new Dictionary<string, string> { ["TEST_GREETING"] = "v-old" }))).Created();
        var broken = FunctionInstance.Open("keep", new Dictionary<string, string> { ["TEST_NEVER_HEALTHY"] = "1" });
        var e = (await admin.PutAsync(Fn(svc, "keep"), broken)).Error(ErrorCatalog.s_function_updateopenfunctionerror);
        Assert.Equal("NeverHealthy", e.GetProperty("errCode").GetString());

        Assert.False((await admin.GetAsync(Fn(svc, "keep"))).Ok().GetProperty("config").GetProperty("environment").TryGetProperty("TEST_NEVER_HEALTHY", out _));
        var (status, body, text) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/keep/", world.AppToken);
        Assert.True(status == HttpStatusCode.OK, text);
        Assert.Equal("v-old", body.GetProperty("greeting").GetString());
    }

    [Fact]
    public async Task ByTemplate_ParametersCheckedAgainstTheSchema_AndUpdateNeedsThem()
    {
        var platform = Host.Admin();
        var template = (await platform.PostAsync("/api/v1/platform/function-templates", new
        {
            name = "greeter-" + Guid.NewGuid().ToString("N")[..8], engine = "custom", command = FunctionInstance.Dotnet, args = new[] { FunctionInstance.DllPath },
            environment = new Dictionary<string, string> { ["TEST_GREETING"] = "{{greeting}}" }, healthPath = "/health",
            parametersSchema = JsonDocument.Parse("""
                {"type":"object","additionalProperties":false,"required":["greeting"],
                 "properties":{"greeting":{"type":"string","maxLength":20},"size":{"type":"integer","minimum":1,"default":2}}}
                """).RootElement,
        })).Created();
        var templateId = template.GetProperty("id").GetString()!;
        var (world, admin, svc) = await ServiceAsync();

        (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "t1", templateId = "ftp_nope", instanceParameters = new { greeting = "hi" } }))
            .Error(ErrorCatalog.p_function_invalidtemplateid);
        (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "t1", templateId, instanceParameters = new { greeting = 5 } })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "t1", templateId, instanceParameters = new { size = 3 } })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "t1", templateId, instanceParameters = new { greeting = "hi", color = "red" } }))
            .Error(ErrorCatalog.p_common_inputinvalid);
        Assert.Equal(0, (await admin.GetAsync(Fn(svc))).Ok().GetProperty("total").GetInt32());

        var created = (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "t1", templateId, instanceParameters = new { greeting = "salut" } })).Created();
        Assert.Equal(2, created.GetProperty("instanceParameters").GetProperty("size").GetInt32());
        var (_, body, _) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/t1/", world.AppToken);
        Assert.Equal("salut", body.GetProperty("greeting").GetString());

        (await admin.PutAsync(Fn(svc, "t1") + "/by-template", new { templateId })).Error(ErrorCatalog.p_updatefunction_instanceparametersnotallowednull);
        (await admin.PutAsync(Fn(svc, "t1") + "/by-template", new { instanceParameters = new { greeting = "hola" } })).Ok();
        (_, body, _) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/t1/", world.AppToken);
        Assert.Equal("hola", body.GetProperty("greeting").GetString());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(Fn(svc, "t1") + "/by-template")).Status);
    }

    [Fact]
    public async Task ByTemplate_LauncherMissing_CreateAndUpdateFailWithTheBackendCause()
    {
        var (_, admin, svc) = await ServiceAsync();
        // The built-in a1111 template runs an AUTOMATIC1111 launcher, which is not installed here.
        var e = (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "webui", templateId = "a1111", instanceParameters = new { launcher = "/opt/none/webui.sh" } }))
            .Error(ErrorCatalog.s_function_createfunctionerror);
        Assert.Equal("CommandNotFound", e.GetProperty("errCode").GetString());
        Assert.Equal(0, (await admin.GetAsync(Fn(svc))).Ok().GetProperty("total").GetInt32());

        var platform = Host.Admin();
        var templateId = (await platform.PostAsync("/api/v1/platform/function-templates", new
        {
            name = "launcher-" + Guid.NewGuid().ToString("N")[..8], engine = "custom", command = "{{launcher}}", args = new[] { FunctionInstance.DllPath }, healthPath = "/health",
            parametersSchema = JsonDocument.Parse("""{"type":"object","properties":{"launcher":{"type":"string"}}}""").RootElement,
        })).Created().GetProperty("id").GetString()!;
        (await admin.PostAsync(Fn(svc) + "/by-template", new { name = "ok", templateId, instanceParameters = new { launcher = FunctionInstance.Dotnet } })).Created();
        e = (await admin.PutAsync(Fn(svc, "ok") + "/by-template", new { instanceParameters = new { launcher = "/opt/none/dotnet" } })).Error(ErrorCatalog.s_function_updatefunctionerror);
        Assert.Equal("CommandNotFound", e.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task VersionsAndAliases_WeightsRouteToTheVersions_AndBadWeightsStoreNothing()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("canary", new Dictionary<string, string> { ["TEST_GREETING"] = "one" }))).Created();
        Assert.Equal(1, (await admin.PostAsync(Fn(svc, "canary") + "/versions", new { description = "first" })).Created().GetProperty("versionId").GetInt32());
        (await admin.PutAsync(Fn(svc, "canary"), FunctionInstance.Open("canary", new Dictionary<string, string> { ["TEST_GREETING"] = "two" }))).Ok();
        Assert.Equal(2, (await admin.PostAsync(Fn(svc, "canary") + "/versions", new { })).Created().GetProperty("versionId").GetInt32());
        Assert.Equal(2, (await admin.GetAsync(Fn(svc, "canary") + "/versions")).Ok().GetProperty("total").GetInt32());

        (await admin.PostAsync(Fn(svc, "canary") + "/aliases", new { name = "prod", versionId = 1, additionalVersionWeight = new Dictionary<string, double> { ["2"] = 1.5 } }))
            .Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(Fn(svc, "canary") + "/aliases", new { name = "prod", versionId = 1, additionalVersionWeight = new Dictionary<string, double> { ["9"] = 0.1 } }))
            .Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(Fn(svc, "canary") + "/aliases", new { name = "prod", versionId = 7 })).Error(ErrorCatalog.p_common_inputinvalid);
        Assert.Empty((await admin.GetAsync(Fn(svc, "canary") + "/aliases")).Ok().EnumerateArray());

        (await admin.PostAsync(Fn(svc, "canary") + "/aliases", new { name = "prod", versionId = 1 })).Created();
        Assert.Equal("one", (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/canary.prod/", world.AppToken)).Body.GetProperty("greeting").GetString());
        Assert.Equal("two", (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/canary.2/", world.AppToken)).Body.GetProperty("greeting").GetString());
        Assert.Equal("two", (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/canary.LATEST/", world.AppToken)).Body.GetProperty("greeting").GetString());

        // All of the alias's traffic to the second version, then a real split.
        (await admin.PutAsync(Fn(svc, "canary") + "/aliases/prod", new { versionId = 1, additionalVersionWeight = new Dictionary<string, double> { ["2"] = 1.0 } })).Ok();
        Assert.Equal("two", (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/canary.prod/", world.AppToken)).Body.GetProperty("greeting").GetString());
        (await admin.PutAsync(Fn(svc, "canary") + "/aliases/prod", new { versionId = 1, additionalVersionWeight = new Dictionary<string, double> { ["2"] = 0.5 } })).Ok();
        var seen = new HashSet<string>();
        await Eventually.UntilAsync(async () =>
        {
            seen.Add((await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/canary.prod/", world.AppToken)).Body.GetProperty("greeting").GetString()!);
            return seen.Count == 2;
        }, "a 50/50 alias reached both versions");
    }

    [Fact]
    public async Task AnonymousTrigger_OpensOnlyItsMethods_ByServiceId()
    {
        var (world, admin, svc) = await ServiceAsync();
        var serviceId = (await admin.GetAsync($"/api/v1/services/{svc}")).Ok().GetProperty("id").GetString()!;
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("public"))).Created();
        Assert.Equal(HttpStatusCode.Unauthorized, (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{serviceId}/public/", null)).Status);

        (await admin.PostAsync(Fn(svc, "public") + "/triggers", new { name = "web", type = "http", anonymous = true, methods = new[] { "GET" } })).Created();
        (await admin.PostAsync(Fn(svc, "public") + "/triggers", new { name = "bad", type = "timer", cron = "every minute" })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PostAsync(Fn(svc, "public") + "/triggers", new { name = "bad", type = "carrier-pigeon" })).Error(ErrorCatalog.p_common_inputinvalid);
        Assert.Single((await admin.GetAsync(Fn(svc, "public") + "/triggers")).Ok().EnumerateArray());

        Assert.Equal(HttpStatusCode.OK, (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{serviceId}/public/", null)).Status);
        using var post = await Host.Client.Http.PostAsync($"/fn/{serviceId}/public/echo", new StringContent("x"));
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
        // By name, a service is only found in the caller's own tenant.
        Assert.Equal(HttpStatusCode.Unauthorized, (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/public/", null)).Status);
        Assert.Equal(HttpStatusCode.OK, (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/public/", world.AppToken)).Status);
    }

    [Fact]
    public async Task InstanceKilledMidRequest_RequestFailsCleanly_AndTheNextOneIsServed()
    {
        var (world, admin, svc) = await ServiceAsync();
        // Two slots on one instance: one for the slow request, one to watch it arrive.
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("fragile", concurrency: 2))).Created();
        var pid = (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/fragile/", world.AppToken)).Body.GetProperty("pid").GetInt32();
        var slow = FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/fragile/slow?ms=60000", world.AppToken);
        await Eventually.UntilAsync(async () =>
            (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/fragile/inflight", world.AppToken)).Body.GetProperty("now").GetInt32() == 1,
            "the slow request reached the instance");
        System.Diagnostics.Process.GetProcessById(pid).Kill();
        var (status, _, text) = await slow;
        Assert.True(status is HttpStatusCode.BadGateway, $"{(int)status}: {text}");
        Assert.Contains("s_function_invokeopenfunctionerror", text, StringComparison.Ordinal);

        var (after, body, afterText) = await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/fragile/", world.AppToken);
        Assert.True(after == HttpStatusCode.OK, afterText);
        Assert.NotEqual(pid, body.GetProperty("pid").GetInt32());
    }

    [Fact]
    public async Task ConcurrencyConfig_TwoHundredConcurrentInvokes_NeverMoreThanEightInstances_NoneLost()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("busy", concurrency: 4, timeoutSeconds: 10))).Created();
        Assert.Equal(8, (await admin.PutAsync(Fn(svc, "busy") + "/concurrency-config", new { reservedConcurrency = 8 })).Ok().GetProperty("reservedConcurrency").GetInt32());
        (await admin.PutAsync(Fn(svc, "busy") + "/concurrency-config", new { reservedConcurrency = 0 })).Error(ErrorCatalog.p_common_inputinvalid);

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = Host.BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => FunctionInstance.GetAsync(http, $"/fn/{svc}/busy/slow?ms=200", world.AppToken)));
        var served = results.Where(r => r.Status == HttpStatusCode.OK).ToList();
        var refused = results.Where(r => r.Status == HttpStatusCode.ServiceUnavailable).ToList();
        // Every request has an answer: served, or refused with the envelope and a Retry-After (none lost, none failed otherwise).
        Assert.Equal(results.Length, served.Count + refused.Count);
        Assert.NotEmpty(served);
        Assert.True(served.Select(r => r.Body.GetProperty("pid").GetInt32()).Distinct().Count() <= 8);
        foreach (var r in refused)
        {
            Assert.Contains("s_function_invokeopenfunctionerror", r.Text, StringComparison.Ordinal);
            Assert.Contains("NoCapacity", r.Text, StringComparison.Ordinal);
        }

        var listed = (await admin.GetAsync(Fn(svc))).Ok().GetProperty("items").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "busy");
        Assert.True(listed.GetProperty("runtime").GetProperty("instances").GetInt32() <= 8);
    }

    [Fact]
    public async Task ProvisionAndScale_KeepInstancesWarm_AndReportThem()
    {
        var (_, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("warm"))).Created();
        var put = (await admin.PutAsync(Fn(svc, "warm") + "/provision-config", new { target = 2 })).Ok();
        Assert.Equal(2, put.GetProperty("target").GetInt32());
        Assert.Equal(2, (await admin.GetAsync(Fn(svc, "warm") + "/provision-config")).Ok().GetProperty("current").GetInt32());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(Fn(svc, "warm") + "/provision-config")).Status);
        Assert.Equal(0, (await admin.GetAsync(Fn(svc, "warm") + "/provision-config")).Ok().GetProperty("target").GetInt32());
        Assert.Equal(3, (await admin.PostAsync(Fn(svc, "warm") + "/scale", new { instances = 3 })).Ok().GetProperty("manualInstances").GetInt32());
        Assert.Equal(3, (await admin.GetAsync(Fn(svc, "warm") + "/provision-config")).Ok().GetProperty("current").GetInt32());
        (await admin.PostAsync(Fn(svc, "warm") + "/scale", new { instances = -1 })).Error(ErrorCatalog.p_common_inputinvalid);
    }

    [Fact]
    public async Task AsyncInvocation_QueuedRunAndResultKept_LostResultIsAnError()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("later"))).Created();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/fn/{svc}/later/echo") { Content = new StringContent("{\"hello\":1}", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", world.AppToken);
        request.Headers.Add("X-Atelier-Invocation-Type", "Async");
        using var accepted = await Host.Client.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var id = accepted.Headers.GetValues("X-Atelier-Invocation-Id").Single();

        var app = world.AppOf(Host);
        var done = await Eventually.ValueAsync(async () => (await app.GetAsync($"{Fn(svc, "later")}/async-invocations/{id}")).Ok(),
            d => d.GetProperty("state").GetString() == "succeeded", "the async invocation ran");
        Assert.Equal(200, done.GetProperty("statusCode").GetInt32());
        Assert.Equal("{\"hello\":1}", done.GetProperty("result").GetString());

        // The result lives in the object store; when the store has lost it, reading it is an error, not an empty result.
        var stored = Directory.EnumerateFiles(Path.Combine(Host.Database.Folder, "data"), id + "*", SearchOption.AllDirectories).Single();
        File.Delete(stored);
        (await app.GetAsync($"{Fn(svc, "later")}/async-invocations/{id}")).Error(ErrorCatalog.s_function_getasyncinvocationerror);
    }

    [Fact]
    public async Task TimerTrigger_Fires_AsAsyncInvocationsWithItsPayload()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("cron"))).Created();
        (await admin.PostAsync(Fn(svc, "cron") + "/triggers", new { name = "tick", type = "timer", cron = "* * * * * *", payload = "{\"tick\":true}" })).Created();
        // A timer posts its payload to the function's root; the test instance answers 405 there, which shows the call reached it.
        var fired = await Eventually.ValueAsync(async () => (await world.AppOf(Host).GetAsync($"{Fn(svc, "cron")}/async-invocations")).Ok(),
            d => d.GetProperty("items").EnumerateArray().Any(i => i.GetProperty("statusCode").ValueKind == JsonValueKind.Number), "the timer fired and its invocation reached the instance");
        var first = fired.GetProperty("items").EnumerateArray().First(i => i.GetProperty("statusCode").ValueKind == JsonValueKind.Number);
        Assert.Equal("POST", first.GetProperty("method").GetString());
        Assert.Equal("/", first.GetProperty("path").GetString());
        Assert.Equal(405, first.GetProperty("statusCode").GetInt32());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(Fn(svc, "cron") + "/triggers/tick")).Status);
    }

    [Fact]
    public async Task AsyncConfig_DestinationsAreChecked()
    {
        var (_, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("src"))).Created();
        (await admin.PutAsync(Fn(svc, "src") + "/async-invoke-config", new { maxAsyncRetryAttempts = 9 })).Error(ErrorCatalog.p_common_inputinvalid);
        (await admin.PutAsync(Fn(svc, "src") + "/async-invoke-config", new { destinationConfig = new { onSuccess = new { destination = "http://127.0.0.1:9/hook" } } }))
            .Error(ErrorCatalog.p_common_inputinvalid);
        var ok = (await admin.PutAsync(Fn(svc, "src") + "/async-invoke-config", new
        {
            maxAsyncRetryAttempts = 1, destinationConfig = new { onFailure = new { destination = $"function:{svc}/src" } },
        })).Ok();
        Assert.Equal(1, ok.GetProperty("maxAsyncRetryAttempts").GetInt32());
        Assert.Equal(1, (await admin.GetAsync(Fn(svc, "src") + "/async-invoke-config")).Ok().GetProperty("maxAsyncRetryAttempts").GetInt32());
    }

    [Fact]
    public async Task Delete_StopsTheInstances_AndTheRouteIsGone()
    {
        var (world, admin, svc) = await ServiceAsync();
        (await admin.PostAsync(Fn(svc), FunctionInstance.Open("short"))).Created();
        var pid = (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/short/", world.AppToken)).Body.GetProperty("pid").GetInt32();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync(Fn(svc, "short"))).Status);
        await Eventually.UntilAsync(() => Task.FromResult(!ProcessState.IsRunning(pid)), "the instance process is gone");
        Assert.Equal(HttpStatusCode.NotFound, (await FunctionInstance.GetAsync(Host.Client.Http, $"/fn/{svc}/short/", world.AppToken)).Status);
        // A service with no functions left can go.
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/services/{svc}")).Status);
    }
}
