using System.Net;
using System.Text.Json;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests;

/// <summary>
/// Walks every route of the API with a second tenant's credentials and the first tenant's ids: an id-bearing route
/// answers 403 or 404, never 2xx, and no answer of any route contains one of the first tenant's ids.
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

        var aAgent = (await aAdmin.GetAsync("/api/v1/agents")).Ok()[0].GetProperty("id").GetString()!;
        var aJob = (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs", new { jobId = "a-secret-job", input = new { prompt = "a" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        var aHookJob = (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs", new { input = new { prompt = "a" }, webhook = receiver.Url("/a-secret-hook") }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        (await a.AppOf(host).PostAsync($"/api/v1/agents/{aAgent}/jobs/{aHookJob}/cancel")).Ok();
        var aDelivery = (await aAdmin.GetAsync($"/api/v1/webhook-deliveries?jobId={aHookJob}")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        var aSecret = (await aAdmin.GetAsync($"/api/v1/apps/{a.AppId}/webhook")).Ok().GetProperty("secret").GetString()!;
        var ids = new Dictionary<string, string>
        {
            ["uid"] = a.AccountUid, ["tenantId"] = a.TenantId, ["appId"] = a.AppId, ["tokenId"] = a.AppTokenId, ["roleId"] = aRole,
            ["sessionId"] = aSessionId, ["resourceConfigId"] = aConfig,
            ["modelId"] = aModel, ["versionId"] = aVersionId, ["fileId"] = aFileId, ["uploadId"] = aUploadId,
            ["agentId"] = aAgent, ["jobId"] = aJob, ["taskId"] = aJob, ["index"] = "0", ["imageId"] = aImage, ["scope"] = a.AppId,
            ["deliveryId"] = aDelivery,
        };
        string[] secrets = [a.TenantId, a.AppId, a.AppTokenId, aRole, aAdminTokenId, a.AccountUid, "a-secret-role", aSessionId, aConfig, "a-user", "a-gpu",
            aModel, aVersionId, aFileId, aUploadId, "a-secret-model", aAgent, aJob, "a-secret-job", aUpload.GetProperty("sha256").GetString()!,
            aImage, aImageJob, "a-secret-image", aHookJob, aDelivery, aSecret, "a-secret-hook"];

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
}
