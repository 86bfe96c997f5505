using System.Net;
using System.Text.Json;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// Walks every route of the API with a second tenant's credentials and the first tenant's ids: an id-bearing route
/// answers 403 or 404, never 2xx, and no answer of any route contains one of the first tenant's ids. Then, inside one
/// tenant, walks every route of jobs, tasks, images, deliveries and sessions with another app's token and with
/// sessions (of another app, and of the same app) against one app's work.
/// </summary>
public class IsolationTests
{
    [Fact]
    public async Task EveryRoute_OtherTenantsIds_NeverAnswersTheirData()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Webhooks:AllowPrivateNetworks"] = "true" });
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var aAdmin = a.AdminOf(host);
        var aRole = (await aAdmin.PostAsync("/api/v1/roles", new { name = "a-secret-role" })).Created().GetProperty("id").GetString()!;
        var aAdminTokenId = (await aAdmin.GetAsync("/api/v1/me")).Ok().GetProperty("credentialId").GetString()!;
        var aConfig = (await aAdmin.PostAsync("/api/v1/resource-configs", new { name = "a-gpu", engine = "builtin", instanceType = "gpu" })).Created()
            .GetProperty("id").GetString()!;
        var aSession = (await a.AppOf(host).PostAsync("/api/v1/sessions", new { endUserId = "a-user", resourceConfigId = aConfig })).Created();
        var aSessionId = aSession.GetProperty("session").GetProperty("id").GetString()!;
        var aUpload = await Library.UploadAsync(host, aAdmin, "lora", "a-file.safetensors", ModelFiles.Lora("isolation"));
        var aUploadId = aUpload.GetProperty("id").GetString()!;
        var aModel = await Library.ModelAsync(aAdmin, "lora", "a-secret-model");
        var aVersion = (await aAdmin.PostAsync($"/api/v1/models/{aModel}/versions", new
        {
            name = "a-v1", files = new[] { new { aliasName = "a-file.safetensors", uploadId = aUploadId, primary = true } },
        })).Created();
        var aVersionId = aVersion.GetProperty("id").GetString()!;
        var aFileId = aVersion.GetProperty("files")[0].GetProperty("id").GetString()!;
        string aImage, aImageJob;
        await using (var worker = await InProcessWorker.StartAsync(host, "noop"))
        {
            aImageJob = (await a.AppOf(host).PostAsync("/sdapi/v1/txt2img", new { prompt = "a-secret-image", steps = 1 })).Json.GetProperty("info").GetString()!;
            var image = (await aAdmin.GetAsync("/api/v1/images")).Ok().GetProperty("items")[0];
            aImage = image.GetProperty("id").GetString()!;
            aImageJob = image.GetProperty("jobId").GetString()!;
        }

        // The stopped worker's last lease request may still be parked on the server: nothing can claim the app's jobs below.
        await InProcessWorker.RevokeEveryKeyAsync(host);

        var aAgent = (await aAdmin.GetAsync("/api/v1/agents")).Ok()[0].GetProperty("id").GetString()!;
        var aJob = (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs", new { jobId = "a-secret-job", input = new { prompt = "a" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        var aHookJob = (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs", new { input = new { prompt = "a" }, webhook = receiver.Url("/a-secret-hook") }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs/{aHookJob}/cancel")).Ok();
        var aDelivery = (await aAdmin.GetAsync($"/api/v1/webhook-deliveries?jobId={aHookJob}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        var aSecret = (await aAdmin.GetAsync($"/api/v1/apps/{a.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
        // Tenant A's functions: a service, a function with a version, an alias, a trigger, a mounted domain and an async invocation.
        (await aAdmin.PostAsync("/api/v1/services", new { name = "a-secret-svc" })).Created();
        var aFunction = (await aAdmin.PostAsync("/api/v1/services/a-secret-svc/functions", FunctionInstance.Open("a-secret-fn"))).Created().GetProperty("id").GetString()!;
        (await aAdmin.PostAsync("/api/v1/services/a-secret-svc/functions/a-secret-fn/versions", new { })).Created();
        (await aAdmin.PostAsync("/api/v1/services/a-secret-svc/functions/a-secret-fn/aliases", new { name = "a-alias", versionId = 1 })).Created();
        (await aAdmin.PostAsync("/api/v1/services/a-secret-svc/functions/a-secret-fn/triggers", new { name = "a-trigger", type = "http" })).Created();
        var (aCert, aKey) = Certificates.SelfSigned("a-secret.example.test");
        (await aAdmin.PostAsync("/api/v1/services/a-secret-svc/functions/a-secret-fn/custom-domains", new { domainName = "a-secret.example.test", certificate = aCert, privateKey = aKey }))
            .Created();
        using var asyncCall = new HttpRequestMessage(HttpMethod.Post, "/fn/a-secret-svc/a-secret-fn/echo") { Content = new StringContent("a-secret-payload") };
        asyncCall.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", a.AppToken);
        asyncCall.Headers.Add("X-Atelier-Invocation-Type", "Async");
        using var queued = await host.Client.Http.SendAsync(asyncCall);
        var aInvocation = queued.Headers.GetValues("X-Atelier-Invocation-Id").Single();

        // Tenant A's agents: a pool open to A only, a scale template, an agent with a version and a unit (no replicas).
        var aPool = (await host.Admin().PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "a-secret-pool", tenantIds = new[] { a.TenantId }, regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity = 1 } } } },
        })).Created().GetProperty("id").GetString()!;
        var aTemplate = (await aAdmin.PostAsync("/api/v1/scale-templates", new { name = "a-secret-template" })).Created().GetProperty("id").GetString()!;
        var aUnitAgent = (await aAdmin.PostAsync("/api/v1/agents", new { name = "a-secret-agent" })).Created().GetProperty("id").GetString()!;
        var aAgentVersion = (await aAdmin.PostAsync($"/api/v1/agents/{aUnitAgent}/versions", new { versionName = "a-secret-v", image = "a-secret/image:1", engine = "noop", autoScaleTemplateId = aTemplate }))
            .Created().GetProperty("id").GetString()!;
        var aUnit = (await aAdmin.PostAsync($"/api/v1/agents/{aUnitAgent}/units", new { agentVersionId = aAgentVersion, computingPoolId = aPool, region = "local", instanceType = "cpu", replicas = 0, autoscale = false }))
            .Created();
        var aUnitId = aUnit.GetProperty("id").GetString()!;
        var aAgentFunction = aUnit.GetProperty("function").GetProperty("id").GetString()!;

        var ids = new Dictionary<string, string>
        {
            ["sha256"] = aUpload.GetProperty("sha256").GetString()!, ["unitId"] = aUnitId, ["poolId"] = aPool, ["region"] = "local", ["functionId"] = aAgentFunction,
            ["service"] = "a-secret-svc", ["function"] = "a-secret-fn", ["alias"] = "a-alias", ["trigger"] = "a-trigger", ["domain"] = "a-secret.example.test",
            ["invocationId"] = aInvocation,
            // Platform objects, not a tenant's: regions, kube configs and templates are refused to tenants, or are shared (templates).
            ["name"] = "local", ["kubeConfigId"] = "kc_none", ["templateId"] = "ftp_none",
            ["uid"] = a.AccountUid, ["tenantId"] = a.TenantId, ["appId"] = a.AppId, ["tokenId"] = a.AppTokenId, ["roleId"] = aRole,
            ["sessionId"] = aSessionId, ["resourceConfigId"] = aConfig,
            ["modelId"] = aModel, ["versionId"] = aVersionId, ["fileId"] = aFileId, ["uploadId"] = aUploadId,
            ["agentId"] = aAgent, ["jobId"] = aJob, ["taskId"] = aJob, ["index"] = "0", ["imageId"] = aImage, ["scope"] = a.AppId,
            ["deliveryId"] = aDelivery, ["keyId"] = "wk_unknown",
            // The usage charts are built-in and the same for every tenant: no id of A's to try, so a name that is no chart
            // (which must answer like any other unknown one). What a chart shows is isolated by tenant: UsageTests.
            ["chartId"] = "no-such-chart",
        };
        string[] secrets = [a.TenantId, a.AppId, a.AppTokenId, aRole, aAdminTokenId, a.AccountUid, "a-secret-role", aSessionId, aConfig, "a-user", "a-gpu",
            aModel, aVersionId, aFileId, aUploadId, "a-secret-model", aAgent, aJob, "a-secret-job", aUpload.GetProperty("sha256").GetString()!,
            aImage, aImageJob, "a-secret-image", aHookJob, aDelivery, aSecret, "a-secret-hook",
            "a-secret-svc", "a-secret-fn", aFunction, "a-secret.example.test", aInvocation, "a-secret-payload",
            aPool, "a-secret-pool", aTemplate, "a-secret-template", aUnitAgent, "a-secret-agent", aAgentVersion, "a-secret/image", aUnitId, aAgentFunction];

        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText!.StartsWith("/api/v1", StringComparison.Ordinal))
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Endpoint: e)))
            .ToList();
        Assert.True(routes.Count >= 30, $"only {routes.Count} routes found");

        var callers = new[]
        {
            ("tenant B admin", b.AdminOf(host)),
            ("tenant B app", b.AppOf(host)),
            ("platform admin in tenant B", host.Admin().WithHeader("X-Tenant-Id", b.TenantId)),
        };
        var walked = 0;
        foreach (var (method, endpoint) in routes)
        {
            var pattern = endpoint.RoutePattern;
            var path = pattern.RawText!;
            foreach (var p in pattern.Parameters)
            {
                path = path.Replace("{" + p.Name + "}", ids[p.Name], StringComparison.Ordinal);
            }

            var platformRoute = path.StartsWith("/api/v1/accounts", StringComparison.Ordinal)
                                || path.StartsWith("/api/v1/tenants", StringComparison.Ordinal)
                                || path.StartsWith("/api/v1/platform", StringComparison.Ordinal);
            foreach (var (who, client) in callers)
            {
                if (platformRoute && who.StartsWith("platform", StringComparison.Ordinal))
                {
                    continue; // the platform admin owns the platform routes; what it may do there is not isolation
                }

                var body = method is "POST" or "PUT" or "PATCH" ? "{\"name\":\"probe\",\"uid\":\"probe-" + walked + "\"}" : null;
                var r = await client.SendAsync(new HttpMethod(method), path, body);
                walked++;
                if (pattern.Parameters.Count > 0)
                {
                    Assert.True(r.Status is HttpStatusCode.NotFound or HttpStatusCode.Forbidden,
                        $"{who}: {method} {path} answered {(int)r.Status}: {r.Text}");
                    // No existence oracle: another tenant's id answers exactly like an id that was never issued.
                    var ghostPath = pattern.RawText!;
                    foreach (var p in pattern.Parameters)
                    {
                        // (an image index is a number, the same for any task)
                        ghostPath = ghostPath.Replace("{" + p.Name + "}", p.Name == "index" ? ids[p.Name] : ids[p.Name][..4] + "ghost", StringComparison.Ordinal);
                    }

                    var ghost = await client.SendAsync(new HttpMethod(method), ghostPath, body);
                    Assert.Equal(ghost.Status, r.Status);
                    Assert.Equal(ghost.Json.GetProperty("subErrCode").GetString(), r.Json.GetProperty("subErrCode").GetString());
                }

                // The caller may hear back the id it sent (in a not-found message), and nothing else of tenant A.
                foreach (var s in secrets.Where(s => !path.Contains(s, StringComparison.Ordinal)))
                {
                    Assert.False(r.Text.Contains(s, StringComparison.Ordinal), $"{who}: {method} {path} leaked {s}: {r.Text}");
                }
            }
        }

        Assert.True(walked >= 80, $"walked {walked}");
        // Tenant A is untouched: its app, role and tokens are all still there and working.
        (await aAdmin.GetAsync($"/api/v1/apps/{a.AppId}")).Ok();
        (await aAdmin.GetAsync($"/api/v1/roles/{aRole}")).Ok();
        var token = (await aAdmin.GetAsync($"/api/v1/tokens/{a.AppTokenId}")).Ok();
        Assert.False(token.GetProperty("disabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, token.GetProperty("revokedAt").ValueKind);
        (await a.AppOf(host).GetAsync("/api/v1/me")).Ok();
        var session = (await aAdmin.GetAsync($"/api/v1/sessions/{aSessionId}")).Ok();
        Assert.Equal("active", session.GetProperty("state").GetString());
        (await aAdmin.GetAsync($"/api/v1/resource-configs/{aConfig}")).Ok();
        Assert.Equal("synced", (await aAdmin.GetAsync($"/api/v1/model-versions/{aVersionId}")).Ok().GetProperty("syncState").GetString());
        Assert.Equal("queued", (await aAdmin.GetAsync($"/api/v1/agents/{aAgent}/jobs/{aJob}")).Ok().GetProperty("state").GetString());
        (await aAdmin.GetAsync($"/api/v1/images/{aImage}")).Ok();
    }

    /// <summary>Route parameters that name something every caller of the tenant shares (the agent), or a position.</summary>
    private static readonly HashSet<string> Shared = ["agentId", "index"];

    /// <summary>The routes that return or change jobs, tasks, images, webhook deliveries or sessions.</summary>
    private static readonly string[] WorkRoutes =
        ["/api/v1/agents/{agentId}/jobs", "/api/v1/tasks/", "/api/v1/predict/", "/api/v1/images", "/api/v1/webhook-deliveries", "/api/v1/session",
         "/sdapi/v1/progress", "/sdapi/v1/interrupt"];

    [Fact]
    public async Task WorkRoutes_AnotherAppOrASession_NeverAnswerOrChangeAnAppsWork()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Jobs:SyncTimeoutSeconds"] = "60",
        });
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var victim = world.AppOf(host);
        var (_, otherApp) = await Scenario.NewAppAsync(host, world, "other-app");
        async Task<(string Id, ApiClient Client)> SessionOf(ApiClient app, string user)
        {
            var created = (await app.PostAsync("/api/v1/sessions", new { endUserId = user, expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
            return (created.GetProperty("session").GetProperty("id").GetString()!, host.Client.With(created.GetProperty("credential").GetString()!));
        }

        var (victimSessionId, victimSession) = await SessionOf(victim, "v-secret-user");
        var (_, otherAppsSession) = await SessionOf(otherApp, "other-user");
        var (_, siblingSession) = await SessionOf(victim, "sibling-user");

        // The app's work and its end user's: finished tasks with images, queued jobs under client ids, a webhook delivery.
        string aImageTask, vImageTask;
        await using (await InProcessWorker.StartAsync(host, "noop"))
        {
            aImageTask = await AppIsolationTests.PredictAsync(victim, "a-secret-prompt");
            vImageTask = await AppIsolationTests.PredictAsync(victimSession, "v-secret-prompt");
            Assert.Equal("succeeded", await AppIsolationTests.SucceededAsync(victim, aImageTask));
            Assert.Equal("succeeded", await AppIsolationTests.SucceededAsync(victimSession, vImageTask));
        }

        // The stopped worker's last lease request may still be parked on the server: the jobs below stay queued.
        await InProcessWorker.RevokeEveryKeyAsync(host);

        var aImage = (await victim.GetAsync($"/api/v1/images?jobId={aImageTask}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        var vImage = (await victim.GetAsync($"/api/v1/images?jobId={vImageTask}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        var agent = (await admin.GetAsync("/api/v1/agents")).Ok()[0].GetProperty("id").GetString()!;
        var aJob = (await victim.PostAsync($"/api/v1/agents/{agent}/jobs", new { jobId = "a-order-42", input = new { prompt = "a-secret-prompt" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        var vJob = await AppIsolationTests.PredictAsync(victimSession, "v-secret-prompt", key: "v-order-7");
        var aHookJob = (await victim.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = "a" }, webhook = receiver.Url("/a-secret-hook") }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        (await victim.PostAsync($"/api/v1/agents/{agent}/jobs/{aHookJob}/cancel")).Ok();
        var aDelivery = (await victim.GetAsync($"/api/v1/webhook-deliveries?jobId={aHookJob}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;

        string[] secrets = [aImageTask, vImageTask, aImage, vImage, aJob, "a-order-42", vJob, "v-order-7", aHookJob, aDelivery, "a-secret-hook",
            "a-secret-prompt", "v-secret-prompt", victimSessionId, "v-secret-user"];
        // Each target names the app's (or its end user's) things by id and by client id; the task with images comes first.
        var targets = new[]
        {
            new Dictionary<string, string> { ["jobId"] = aImageTask, ["taskId"] = aImageTask, ["imageId"] = aImage },
            new Dictionary<string, string> { ["jobId"] = "a-order-42", ["taskId"] = "a-order-42", ["imageId"] = vImage },
            new Dictionary<string, string> { ["jobId"] = vImageTask, ["taskId"] = vImageTask, ["imageId"] = aImage },
            new Dictionary<string, string> { ["jobId"] = aJob, ["taskId"] = "v-order-7", ["imageId"] = vImage },
            new Dictionary<string, string> { ["jobId"] = vJob, ["taskId"] = vJob, ["imageId"] = vImage },
        };
        foreach (var t in targets)
        {
            t["agentId"] = agent;
            t["index"] = "0";
            t["deliveryId"] = aDelivery;
            t["sessionId"] = victimSessionId;
        }

        var routes = host.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => WorkRoutes.Any(p => e.RoutePattern.RawText!.StartsWith(p, StringComparison.Ordinal)))
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? []).Select(m => (Method: m, Endpoint: e)))
            .ToList();
        Assert.True(routes.Count >= 25, $"only {routes.Count} work routes found");
        var callers = new[] { ("another app's token", otherApp), ("another app's session", otherAppsSession), ("another session of the same app", siblingSession) };
        var walked = 0;
        foreach (var (method, endpoint) in routes)
        {
            var pattern = endpoint.RoutePattern;
            var own = pattern.Parameters.Where(p => !Shared.Contains(p.Name)).ToList();
            var deletes = pattern.RawText == "/api/v1/images/delete";
            // A route with nothing of the app's in its path is called once per caller (or per image, for the batch delete).
            foreach (var target in own.Count > 0 || deletes ? targets : targets[..1])
            {
                string Fill(Func<string, string> value)
                {
                    var path = pattern.RawText!;
                    foreach (var p in pattern.Parameters)
                    {
                        path = path.Replace("{" + p.Name + "}", value(p.Name), StringComparison.Ordinal);
                    }

                    return path;
                }

                var path = Fill(p => target[p]);
                var body = deletes ? $"{{\"ids\":[\"{target["imageId"]}\"]}}"
                    : method is "POST" or "PUT" or "PATCH" ? "{\"name\":\"probe\",\"prompt\":\"probe\",\"steps\":1}" : null;
                foreach (var (who, client) in callers)
                {
                    var r = await client.SendAsync(new HttpMethod(method), path, body);
                    walked++;
                    if (own.Count > 0)
                    {
                        Assert.True(r.Status is HttpStatusCode.NotFound or HttpStatusCode.Forbidden, $"{who}: {method} {path} answered {(int)r.Status}: {r.Text}");
                        // The app's id answers exactly like one never issued.
                        var ghost = await client.SendAsync(new HttpMethod(method), Fill(p => Shared.Contains(p) ? target[p] : target[p][..4] + "ghost"), body);
                        Assert.Equal(ghost.Status, r.Status);
                        Assert.Equal(ghost.Json.GetProperty("subErrCode").GetString(), r.Json.GetProperty("subErrCode").GetString());
                    }

                    // The caller may hear back the ids it sent, and nothing else of the app's or its end user's.
                    foreach (var s in secrets.Where(s => !path.Contains(s, StringComparison.Ordinal) && !(body?.Contains(s, StringComparison.Ordinal) ?? false)))
                    {
                        Assert.False(r.Text.Contains(s, StringComparison.Ordinal), $"{who}: {method} {path} leaked {s}: {r.Text}");
                    }

                    if (deletes && r.Status == HttpStatusCode.OK)
                    {
                        Assert.Equal(0, r.Json.GetProperty("data").GetProperty("deleted").GetArrayLength());
                    }
                }
            }
        }

        Assert.True(walked >= 200, $"walked {walked}");
        // The app's work is untouched: its queued jobs are neither canceled nor flagged, its images and delivery are there,
        // and each owner still finds its job by its own client id.
        foreach (var job in new[] { aJob, vJob })
        {
            var j = (await admin.GetAsync($"/api/v1/tasks/{job}")).Ok();
            Assert.Equal(("queued", false), (j.GetProperty("state").GetString(), j.GetProperty("cancelRequested").GetBoolean()));
        }

        (await admin.GetAsync($"/api/v1/images/{aImage}")).Ok();
        (await admin.GetAsync($"/api/v1/images/{vImage}")).Ok();
        (await admin.GetAsync($"/api/v1/webhook-deliveries/{aDelivery}")).Ok();
        Assert.Equal(aJob, (await victim.GetAsync("/api/v1/tasks/a-order-42")).Ok().GetProperty("id").GetString());
        Assert.Equal(vJob, (await victimSession.GetAsync("/api/v1/tasks/v-order-7")).Ok().GetProperty("id").GetString());
        Assert.Equal("active", (await admin.GetAsync($"/api/v1/sessions/{victimSessionId}")).Ok().GetProperty("state").GetString());
    }
}
