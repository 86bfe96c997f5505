using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Agents;

/// <summary>A server whose autoscaler looks every second; units on the local backend run real <c>atelier worker</c> processes.</summary>
public sealed class AgentsHost : IAsyncLifetime
{
    public static readonly Dictionary<string, string> Settings = new()
    {
        ["Atelier:Agents:ScaleIntervalSeconds"] = "1",
        ["Atelier:Functions:LocalStartTimeoutSeconds"] = "60",
        ["Atelier:Functions:LocalStopGraceSeconds"] = "2",
        ["Atelier:Jobs:LeaseSeconds"] = "5",
    };

    public TestHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await TestHost.StartAsync(Settings);

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>Pools, agents, versions, scale templates and units through the API: every refusal's code, isolation, and the autoscaler for real.</summary>
public class AgentTests(AgentsHost shared) : IClassFixture<AgentsHost>
{
    private TestHost Host => shared.Host;

    /// <summary>A tenant with a pool open to it (one local region, an instance type of <paramref name="capacity"/> replicas), a scale template, an agent and a version.</summary>
    private async Task<Setup> SetupAsync(int capacity = 3, string engine = "noop=200", object? template = null, IReadOnlyList<object>? subprojects = null)
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var pool = (await Host.Admin().PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "pool-" + Guid.NewGuid().ToString("N")[..8], tenantIds = new[] { world.TenantId },
            regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity, slotsPerReplica = 1 } }, subprojects = subprojects ?? [] } },
        })).Created().GetProperty("id").GetString()!;
        var st = (await admin.PostAsync("/api/v1/scale-templates", template ?? new
        {
            name = "quick", minReplicas = 0, maxReplicas = 3, scaleDownWindowSeconds = 2, idleSecondsBeforeZero = 4,
        })).Created().GetProperty("id").GetString()!;
        var agent = (await admin.PostAsync("/api/v1/agents", new { name = "painters" })).Created().GetProperty("id").GetString()!;
        var version = (await admin.PostAsync($"/api/v1/agents/{agent}/versions", new { versionName = "v1", image = "atelier/atelier:test", engine, autoScaleTemplateId = st }))
            .Created().GetProperty("id").GetString()!;
        return new Setup(world, admin, pool, st, agent, version);
    }

    private sealed record Setup(TenantWorld World, ApiClient Admin, string Pool, string Template, string Agent, string Version)
    {
        public string Units => $"/api/v1/agents/{Agent}/units";

        public object Unit(int? replicas = 0, bool autoscale = true, string? subproject = null) =>
            new { agentVersionId = Version, computingPoolId = Pool, region = "local", instanceType = "cpu", replicas, autoscale, subproject };
    }

    private static async Task<string> SubmitAsync(ApiClient client, string agent) =>
        (await client.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = "a lighthouse", steps = 2, width = 64, height = 64 } }))
        .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;

    private static async Task<JsonElement> ScalingAsync(ApiClient admin, string units, string unit) => (await admin.GetAsync($"{units}/{unit}/scaling")).Ok();

    [Fact]
    public async Task Pool_WithoutRegions_OrWithARegionTwice_OrAnUnknownRegion_IsRefused_AndOnlyThePlatformMakesPools()
    {
        var platform = Host.Admin();
        (await platform.PostAsync("/api/v1/platform/computing-pools", new { name = "empty", regions = Array.Empty<object>() })).Error(ErrorCatalog.b_agent_regionsnotexist);
        var type = new[] { new { name = "cpu", capacity = 1 } };
        (await platform.PostAsync("/api/v1/platform/computing-pools", new { name = "twice", regions = new[] { new { region = "local", instanceTypes = type }, new { region = "local", instanceTypes = type } } }))
            .Error(ErrorCatalog.b_agent_regionsduplicated);
        var unknown = (await platform.PostAsync("/api/v1/platform/computing-pools", new { name = "mars", regions = new[] { new { region = "mars-1", instanceTypes = type } } }))
            .Error(ErrorCatalog.b_agent_regionsnotexist);
        Assert.Contains("mars-1", unknown.GetProperty("errMessage").GetString(), StringComparison.Ordinal);

        var pool = (await platform.PostAsync("/api/v1/platform/computing-pools", new { name = "p-" + Guid.NewGuid().ToString("N")[..6], regions = new[] { new { region = "local", instanceTypes = type } } }))
            .Created().GetProperty("id").GetString()!;
        (await platform.GetAsync($"/api/v1/platform/computing-pools/{pool}/regions/eu-west")).Error(ErrorCatalog.b_agent_regionconfignotexist);
        (await platform.GetAsync("/api/v1/platform/computing-pools/pool_nothere")).Error(ErrorCatalog.b_agent_computingpoolnotexist);
        Assert.Equal(1, (await platform.GetAsync($"/api/v1/platform/computing-pools/{pool}/regions/local")).Ok().GetProperty("instanceTypes").GetArrayLength());
        // The last region of a pool cannot go; a tenant admin cannot make pools.
        (await platform.DeleteAsync($"/api/v1/platform/computing-pools/{pool}/regions/local")).Error(ErrorCatalog.b_agent_regionsnotexist);
        var world = await Scenario.NewTenantAsync(Host);
        Assert.Equal(HttpStatusCode.Forbidden, (await world.AdminOf(Host).PostAsync("/api/v1/platform/computing-pools", new { name = "mine" })).Status);
    }

    [Fact]
    public async Task AgentVersion_NeedsAVersionName_AnImage_AndAnExistingScaleTemplate()
    {
        var s = await SetupAsync();
        var versions = $"/api/v1/agents/{s.Agent}/versions";
        (await s.Admin.PostAsync(versions, new { image = "x:1", autoScaleTemplateId = s.Template })).Error(ErrorCatalog.p_agent_versionnameshouldnotblank);
        (await s.Admin.PostAsync(versions, new { versionName = "v2", autoScaleTemplateId = s.Template })).Error(ErrorCatalog.p_agent_imageshouldnotblank);
        (await s.Admin.PostAsync(versions, new { versionName = "v2", image = "x:1" })).Error(ErrorCatalog.p_agent_autoscaletemplateidshouldnotblank);
        (await s.Admin.PostAsync(versions, new { versionName = "v2", image = "x:1", autoScaleTemplateId = "sct_gone" })).Error(ErrorCatalog.b_agent_scaletemplatenotexist);
        (await s.Admin.PostAsync(versions, new { versionName = "v1", image = "x:1", autoScaleTemplateId = s.Template })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await s.Admin.PostAsync(versions, new { versionName = "v3", image = "x:1", autoScaleTemplateId = s.Template, args = new[] { "--token", "steal" } }))
            .Error(ErrorCatalog.p_common_inputinvalid);
        // A template in use stays.
        (await s.Admin.DeleteAsync($"/api/v1/scale-templates/{s.Template}")).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }

    [Fact]
    public async Task Unit_Placement_IsChecked_PoolRegionReplicasAndCapacity_WithTheShareNamedInTheMessage()
    {
        var s = await SetupAsync(capacity: 3, subprojects: [new { name = "team-a", instanceType = "cpu", capacity = 1 }]);
        var u = s.Units;
        (await s.Admin.PostAsync(u, new { agentVersionId = s.Version, region = "local", instanceType = "cpu" })).Error(ErrorCatalog.b_agent_computingpoolidisempty);
        (await s.Admin.PostAsync(u, new { agentVersionId = s.Version, computingPoolId = "pool_nothere", region = "local", instanceType = "cpu" }))
            .Error(ErrorCatalog.b_agent_computingpoolnotexist);
        (await s.Admin.PostAsync(u, new { agentVersionId = s.Version, computingPoolId = s.Pool, region = "eu-west", instanceType = "cpu" }))
            .Error(ErrorCatalog.b_agent_regionconfignotexist);
        (await s.Admin.PostAsync(u, s.Unit(replicas: -1))).Error(ErrorCatalog.b_agent_replicasinvalid);

        // Outside the sub-project the instance type has 3 - 1 = 2 replicas; inside it, 1.
        (await s.Admin.PostAsync(u, s.Unit(replicas: 3, autoscale: false))).Error(ErrorCatalog.b_agent_computingunitnotinsufficient,
            values: new Dictionary<string, string> { ["Region"] = "local", ["InstanceType"] = "cpu", ["Subproject"] = "none" });
        (await s.Admin.PostAsync(u, s.Unit(replicas: 2, subproject: "team-a", autoscale: false))).Error(ErrorCatalog.b_agent_computingunitnotinsufficient,
            values: new Dictionary<string, string> { ["Region"] = "local", ["InstanceType"] = "cpu", ["Subproject"] = "team-a" });
        var unit = (await s.Admin.PostAsync(u, s.Unit(replicas: 0, subproject: "team-a", autoscale: false))).Created().GetProperty("id").GetString()!;
        (await s.Admin.PutAsync($"{u}/{unit}", new { replicas = 2 })).Error(ErrorCatalog.b_agent_computingunitnotinsufficient);
        (await s.Admin.PutAsync($"{u}/{unit}", new { replicas = -3 })).Error(ErrorCatalog.b_agent_replicasinvalid);

        // Another tenant sees neither the pool (not open to it) nor the agent.
        var other = await Scenario.NewTenantAsync(Host);
        var stranger = other.AdminOf(Host);
        Assert.DoesNotContain(s.Pool, (await stranger.GetAsync("/api/v1/computing-pools")).Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"{u}/{unit}")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/v1/agents/{s.Agent}")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{u}/{unit}")).Status);
    }

    [Fact]
    public async Task Autoscaler_FromZero_StartsWorkersForTheQueue_RunsTheJobs_AndGoesBackToZero_WithEveryDecisionVisible()
    {
        var s = await SetupAsync(capacity: 2);
        var app = s.World.AppOf(Host);
        var elsewhere = await SubmitAsync(app, "default"); // the default agent's: shared workers only, and this host runs none
        var jobs = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            jobs.Add(await SubmitAsync(app, s.Agent));
        }

        // The unit comes after its queue: the autoscaler's first look sees all four jobs (a unit made first could be
        // scaled 0 → 1 between two submits, and that smaller step would be the first scale-up in the record).
        var unit = (await s.Admin.PostAsync(s.Units, s.Unit(replicas: 0))).Created().GetProperty("id").GetString()!;

        foreach (var job in jobs)
        {
            await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{job}")).Ok().GetProperty("state").GetString(),
                state => state == "succeeded", $"job {job} to succeed on the unit's workers");
        }

        // The unit's workers leased their agent's jobs only: the other agent's job, queued first, is still waiting.
        Assert.Equal("queued", (await app.GetAsync($"/api/v1/agents/default/jobs/{elsewhere}")).Ok().GetProperty("state").GetString());
        (await app.PostAsync($"/api/v1/agents/default/jobs/{elsewhere}/cancel")).Ok();

        // Four jobs wanted four replicas at one slot each; the pool's share had two.
        // (On local a scale-up's decision is stored once its replicas are ready, which can be after the jobs ran: wait for the decision to zero.)
        var scaling = await Eventually.ValueAsync(() => ScalingAsync(s.Admin, s.Units, unit),
            d => d.GetProperty("replicas").GetInt32() == 0 && d.GetProperty("decisions").EnumerateArray()
                .Any(x => x.GetProperty("to").GetInt32() == 0 && x.GetProperty("reason").GetString()!.StartsWith("to zero", StringComparison.Ordinal)),
            "the unit to go back to zero after its idle seconds");
        var decisions = scaling.GetProperty("decisions").EnumerateArray().ToList();
        var up = decisions.LastOrDefault(d => d.GetProperty("to").GetInt32() > d.GetProperty("from").GetInt32());
        Assert.True(up.ValueKind == JsonValueKind.Object, scaling.GetRawText());
        Assert.Equal(2, up.GetProperty("to").GetInt32());
        Assert.True(up.GetProperty("wanted").GetInt32() >= 2);
        Assert.True(up.GetProperty("applied").GetBoolean());
        Assert.Contains(decisions, d => d.GetProperty("to").GetInt32() == 0 && d.GetProperty("reason").GetString()!.StartsWith("to zero", StringComparison.Ordinal));
        Assert.All(decisions, d => Assert.False(string.IsNullOrEmpty(d.GetProperty("leader").GetString())));

        // The unit's key is listed with it, and goes with it.
        var keys = (await s.Admin.GetAsync($"{s.Units}/{unit}/worker-keys")).Ok();
        var keyId = keys[0].GetProperty("id").GetString()!;
        Assert.NotNull(keys[0].GetProperty("lastUsedAt").GetString());
        Assert.DoesNotContain("atw_", keys.GetRawText().Replace(keys[0].GetProperty("displayPrefix").GetString()!, "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{s.Units}/{unit}")).Status);
        var all = (await Host.Admin().GetAsync("/api/v1/platform/worker-keys")).Ok();
        Assert.Contains(all.EnumerateArray(), k => k.GetProperty("id").GetString() == keyId && k.GetProperty("revokedAt").ValueKind == JsonValueKind.String);
    }

    [Fact]
    public async Task SharedWorkers_DoNotLeaseTheJobsOfAnAgentWithUnits_ButDoWhenItHasNone()
    {
        var s = await SetupAsync();
        var unit = (await s.Admin.PostAsync(s.Units, s.Unit(replicas: 0, autoscale: false))).Created().GetProperty("id").GetString()!;
        var job = await SubmitAsync(s.World.AppOf(Host), s.Agent);
        var workerId = "shared-" + Guid.NewGuid().ToString("N")[..6];
        var shared = await WorkerProtocol.RegisterAsync(Host, workerId);

        // The job is queued and the shared worker asks: nothing for it (it is the unit's, whose replicas are 0).
        var lease = await WorkerProtocol.LeaseAsync(shared, workerId, wait: 1);
        Assert.Equal(HttpStatusCode.NoContent, lease.Status);
        Assert.Equal("queued", (await s.Admin.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{job}")).Ok().GetProperty("state").GetString());

        // Without its unit the agent is served by the shared workers again.
        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{s.Units}/{unit}")).Status);
        var leased = (await WorkerProtocol.LeaseAsync(shared, workerId, wait: 5)).Ok();
        Assert.Equal(job, leased.GetProperty("id").GetString());
        (await shared.PostAsync($"/api/v1/worker/jobs/{job}/fail", new { attempt = leased.GetProperty("attempt").GetInt32(), errorCode = "b_agent_unknownexception", errorMessage = "test" })).Ok();
    }

    [Fact]
    public async Task AgentFunction_RemovedByThePlatform_LeavesTheUnitWithoutWorkers_UntilItIsRedeployed()
    {
        var s = await SetupAsync();
        var unit = (await s.Admin.PostAsync(s.Units, s.Unit(replicas: 0))).Created();
        var unitId = unit.GetProperty("id").GetString()!;
        var function = unit.GetProperty("function").GetProperty("id").GetString()!;
        var listed = (await Host.Admin().GetAsync("/api/v1/platform/agent-functions?pageSize=100")).Ok();
        Assert.Contains(listed.GetProperty("items").EnumerateArray(), f => f.GetProperty("id").GetString() == function);

        Assert.Equal(HttpStatusCode.NoContent, (await Host.Admin().DeleteAsync($"/api/v1/platform/agent-functions/{function}")).Status);
        (await s.Admin.GetAsync($"{s.Units}/{unitId}/scaling")).Error(ErrorCatalog.b_agent_agentfunctionnotexist);
        (await s.Admin.PutAsync($"{s.Units}/{unitId}", new { replicas = 1 })).Error(ErrorCatalog.b_agent_agentfunctionnotexist);
        (await Host.Admin().DeleteAsync($"/api/v1/platform/agent-functions/{function}")).Error(ErrorCatalog.b_agent_agentfunctionnotexist);

        var redeployed = (await s.Admin.PostAsync($"{s.Units}/{unitId}/redeploy")).Ok();
        Assert.NotEqual(function, redeployed.GetProperty("function").GetProperty("id").GetString());
        (await s.Admin.GetAsync($"{s.Units}/{unitId}/scaling")).Ok();
        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{s.Units}/{unitId}")).Status);
    }

    [Fact]
    public async Task A1111Calls_GoToTheTokensAgent_ElseTheTenantsDefault()
    {
        var s = await SetupAsync();
        var admin = s.Admin;
        var issued = (await admin.PostAsync($"/api/v1/apps/{s.World.AppId}/tokens", new { name = "painter", scopes = new[] { "app" }, agentId = "painters" })).Created();
        Assert.Equal(s.Agent, issued.GetProperty("token").GetProperty("agentId").GetString());
        (await admin.PostAsync($"/api/v1/apps/{s.World.AppId}/tokens", new { name = "lost", agentId = "nobody" })).Error(ErrorCatalog.p_common_inputinvalid, 404);

        var painter = Host.Client.With(issued.GetProperty("secret").GetString()!);
        var task = (await painter.PostAsync("/api/v1/predict/txt2img", new { prompt = "a fox", steps = 1, width = 64, height = 64 })).Ok(HttpStatusCode.Accepted);
        var taskId = task.GetProperty("taskId").GetString()!;
        Assert.Equal(s.Agent, (await admin.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{taskId}")).Ok().GetProperty("agentId").GetString());

        // The app token names no agent: the tenant's default, which the admin may change.
        (await admin.PostAsync($"/api/v1/agents/{s.Agent}/default")).Ok();
        var other = (await s.World.AppOf(Host).PostAsync("/api/v1/predict/txt2img", new { prompt = "a hare", steps = 1, width = 64, height = 64 }))
            .Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
        (await admin.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{other}")).Ok();
        (await admin.DeleteAsync($"/api/v1/agents/{s.Agent}")).Error(ErrorCatalog.p_common_inputinvalid, 409);

        // Nothing of this test stays queued for another test's shared worker to take.
        (await admin.PostAsync($"/api/v1/agents/{s.Agent}/jobs/{taskId}/cancel")).Ok();
        (await admin.PostAsync($"/api/v1/agents/{s.Agent}/jobs/{other}/cancel")).Ok();
    }

    [Fact]
    public async Task UnitWorkerKilledMidJob_TheJobRunsAgainElsewhere_AndTheRuntimeReplacesTheReplica()
    {
        var s = await SetupAsync(engine: "noop=6000");
        var unit = (await s.Admin.PostAsync(s.Units, s.Unit(replicas: 1, autoscale: false))).Created();
        var unitId = unit.GetProperty("id").GetString()!;
        var name = unit.GetProperty("function").GetProperty("name").GetString()!;
        await Eventually.ValueAsync(async () => (await s.Admin.GetAsync($"{s.Units}/{unitId}")).Ok(),
            u => u.GetProperty("function").GetProperty("readyReplicas").ValueKind == JsonValueKind.Number && u.GetProperty("function").GetProperty("readyReplicas").GetInt32() == 1,
            "the unit's one replica ready");
        var first = Assert.Single(ProcessState.WithArgument(name + "-0"));

        var app = s.World.AppOf(Host);
        var job = await SubmitAsync(app, s.Agent);
        await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{job}")).Ok(),
            j => j.GetProperty("state").GetString() == "running", "the job running on the unit's worker");
        System.Diagnostics.Process.GetProcessById(first).Kill();

        // The lease runs out, the job goes back to the queue, and the replaced replica runs it as attempt 2.
        var done = await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/agents/{s.Agent}/jobs/{job}")).Ok(),
            j => j.GetProperty("state").GetString() == "succeeded", "the job to succeed after its worker was killed", TimeSpan.FromSeconds(120));
        Assert.Equal(2, done.GetProperty("attempt").GetInt32());
        var second = Assert.Single(ProcessState.WithArgument(name + "-"));
        Assert.NotEqual(first, second);
        Assert.Equal(HttpStatusCode.NoContent, (await s.Admin.DeleteAsync($"{s.Units}/{unitId}")).Status);
        await Eventually.UntilAsync(() => !ProcessState.IsRunning(second), "the unit's worker stopped with the unit");
    }
}
