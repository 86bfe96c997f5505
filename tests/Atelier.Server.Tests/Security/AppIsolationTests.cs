using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// Apps of one tenant against each other (issue 12, item 4): an app token sees and changes only its own app's jobs,
/// tasks and images; a session only its own; idempotency keys belong to the caller's app (a session: to the session),
/// so nobody can read another's key or take it first.
/// </summary>
public class AppIsolationTests
{
    private static async Task<(TestHost Host, TenantWorld World, ApiClient X, string XAppId, ApiClient Y)> StartAsync()
    {
        var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:SyncTimeoutSeconds"] = "60" });
        var world = await Scenario.NewTenantAsync(host);
        var (xAppId, x) = await Scenario.NewAppAsync(host, world, "shop-x");
        var (_, y) = await Scenario.NewAppAsync(host, world, "shop-y");
        return (host, world, x, xAppId, y);
    }

    internal static async Task<string> PredictAsync(ApiClient client, string prompt, string? key = null)
    {
        var keyed = key is null ? client : client.WithHeader("Idempotency-Key", key);
        return (await keyed.PostAsync("/api/v1/predict/txt2img", new { prompt, steps = 1 })).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
    }

    internal static Task<string?> SucceededAsync(ApiClient client, string taskId) =>
        Eventually.ValueAsync(async () => (await client.GetAsync($"/api/v1/tasks/{taskId}")).Ok().GetProperty("state").GetString(),
            s => s is "succeeded" or "failed" or "canceled" or "aborted", $"task {taskId} finished");

    private static async Task<string> StateAsync(ApiClient client, string taskId) =>
        (await client.GetAsync($"/api/v1/tasks/{taskId}")).Ok().GetProperty("state").GetString()!;

    [Fact]
    public async Task Tasks_AnotherAppsClientJobId_IsNeitherReadNorTaken()
    {
        var (host, world, x, _, y) = await StartAsync();
        await using var _ = host;
        var xOrder = await PredictAsync(x, "x's order", key: "order-42");

        // App Y asks for X's order by its client id and by its task id, on every task route: it does not exist for Y.
        foreach (var task in new[] { "order-42", xOrder })
        {
            (await y.GetAsync($"/api/v1/tasks/{task}")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.GetAsync($"/api/v1/tasks/{task}/progress")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.GetAsync($"/api/v1/tasks/{task}/result")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.GetAsync($"/api/v1/tasks/{task}/events")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.GetAsync($"/api/v1/tasks/{task}/images/0")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.PostAsync($"/api/v1/tasks/{task}/cancellation")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        }

        Assert.Equal("queued", await StateAsync(x, xOrder)); // Y's cancellations did nothing

        // Y's own order-42 is a job of its own, not b_agent_jobidexisted; each app reads back its own by the key.
        var yOrder = await PredictAsync(y, "y's order", key: "order-42");
        Assert.NotEqual(xOrder, yOrder);
        Assert.Equal(xOrder, (await x.GetAsync("/api/v1/tasks/order-42")).Ok().GetProperty("id").GetString());
        Assert.Equal(yOrder, (await y.GetAsync("/api/v1/tasks/order-42")).Ok().GetProperty("id").GetString());

        // The tenant admin sees every app's tasks: by a client id its own app has not used, the oldest of the tenant's…
        var admin = world.AdminOf(host);
        Assert.Equal(xOrder, (await admin.GetAsync("/api/v1/tasks/order-42")).Ok().GetProperty("id").GetString());
        // …and its own first once it has one.
        var adminOrder = await PredictAsync(admin, "the admin's order", key: "order-42");
        Assert.Equal(adminOrder, (await admin.GetAsync("/api/v1/tasks/order-42")).Ok().GetProperty("id").GetString());
        Assert.Equal(xOrder, (await x.GetAsync("/api/v1/tasks/order-42")).Ok().GetProperty("id").GetString());
    }

    [Fact]
    public async Task Jobs_AnotherApp_CannotListGetOrCancelThem()
    {
        var (host, world, x, _, y) = await StartAsync();
        await using var _ = host;
        var xJob = (await x.PostAsync("/api/v1/agents/default/jobs", new { jobId = "x-batch-1", input = new { prompt = "x's job" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;

        var listed = (await y.GetAsync("/api/v1/agents/default/jobs")).Ok();
        Assert.Equal(0, listed.GetProperty("total").GetInt64());
        Assert.DoesNotContain(xJob, listed.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(0, (await y.GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok().GetProperty("total").GetInt64());
        foreach (var job in new[] { xJob, "x-batch-1" })
        {
            (await y.GetAsync($"/api/v1/agents/default/jobs/{job}")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.GetAsync($"/api/v1/agents/default/jobs/{job}/result")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
            (await y.PostAsync($"/api/v1/agents/default/jobs/{job}/cancel")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        }

        // A1111's interrupt stops the caller's own work only.
        Assert.Equal(HttpStatusCode.OK, (await y.PostAsync("/sdapi/v1/interrupt")).Status);
        var still = (await x.GetAsync($"/api/v1/agents/default/jobs/{xJob}")).Ok();
        Assert.Equal("queued", still.GetProperty("state").GetString());
        Assert.False(still.GetProperty("cancelRequested").GetBoolean());

        // Y's job under the same client id is its own; X and the tenant admin list theirs.
        var yJob = (await y.PostAsync("/api/v1/agents/default/jobs", new { jobId = "x-batch-1", input = new { prompt = "y's job" } }))
            .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        var xList = (await x.GetAsync("/api/v1/agents/default/jobs")).Ok();
        Assert.Equal(1, xList.GetProperty("total").GetInt64());
        Assert.Equal(xJob, xList.GetProperty("items")[0].GetProperty("id").GetString());
        var all = (await world.AdminOf(host).GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("items").EnumerateArray()
            .Select(j => j.GetProperty("id").GetString()).ToList();
        Assert.Contains(xJob, all);
        Assert.Contains(yJob, all);
    }

    [Fact]
    public async Task Images_AnotherApp_CannotListGetOrDeleteThem()
    {
        var (host, world, x, xAppId, y) = await StartAsync();
        await using var _ = host;
        string xTask;
        await using (await InProcessWorker.StartAsync(host, "noop"))
        {
            xTask = await PredictAsync(x, "x's picture");
            Assert.Equal("succeeded", await SucceededAsync(x, xTask));
        }

        var xImage = (await x.GetAsync("/api/v1/images")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        foreach (var query in new[] { "", $"?appId={xAppId}", $"?jobId={xTask}" })
        {
            var listed = (await y.GetAsync("/api/v1/images" + query)).Ok();
            Assert.Equal(0, listed.GetProperty("total").GetInt64());
            Assert.DoesNotContain("x's picture", listed.GetRawText(), StringComparison.Ordinal);
        }

        (await y.GetAsync($"/api/v1/images/{xImage}")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        (await y.GetAsync($"/api/v1/tasks/{xTask}/images/0")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        var deleted = (await y.PostAsync("/api/v1/images/delete", new { ids = new[] { xImage } })).Ok();
        Assert.Equal(0, deleted.GetProperty("deleted").GetArrayLength());
        Assert.Equal(xImage, deleted.GetProperty("notFound")[0].GetString());

        // X's image is still there, bytes and all; the tenant admin sees it too.
        var url = (await x.GetAsync($"/api/v1/images/{xImage}")).Ok().GetProperty("url").GetString()!;
        using (var bytes = await host.Client.Http.GetAsync(url))
        {
            Assert.Equal(HttpStatusCode.OK, bytes.StatusCode);
        }

        (await world.AdminOf(host).GetAsync($"/api/v1/images/{xImage}")).Ok();
        Assert.Equal(1, (await world.AdminOf(host).GetAsync("/api/v1/images")).Ok().GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task IdempotencyKey_SessionTakesItFirst_TheAppsRealOrderIsStillAccepted()
    {
        var (host, world, x, _, _) = await StartAsync();
        await using var _ = host;
        var session = (await x.PostAsync("/api/v1/sessions", new { endUserId = "mallory", expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        var mallory = host.Client.With(session.GetProperty("credential").GetString()!);

        // Without limits (the queue's own duplicate check) and with a credit balance (the retried-submit check before
        // any credit is taken), the session's key and the app's are two keys.
        foreach (var (key, limited) in new[] { ("order-41", false), ("order-42", true) })
        {
            if (limited)
            {
                (await host.Admin().WithHeader("X-Tenant-Id", world.TenantId).PutAsync("/api/v1/entitlements/tenant", new { credits = 10 })).Ok();
            }

            var squat = await PredictAsync(mallory, "squatting", key);
            var real = await PredictAsync(x, "the real order", key);
            Assert.NotEqual(squat, real);
            Assert.Equal(real, await PredictAsync(x, "the real order", key)); // the app's retry finds its own job
            Assert.Equal(squat, await PredictAsync(mallory, "squatting", key));
            // Within its own scope a key still means one body.
            (await mallory.WithHeader("Idempotency-Key", key).PostAsync("/api/v1/predict/txt2img", new { prompt = "another body", steps = 1 }))
                .Error(ErrorCatalog.b_agent_jobidexisted, 409);

            Assert.Equal(real, (await x.GetAsync($"/api/v1/tasks/{key}")).Ok().GetProperty("id").GetString());
            Assert.Equal(squat, (await mallory.GetAsync($"/api/v1/tasks/{key}")).Ok().GetProperty("id").GetString());
            (await mallory.GetAsync($"/api/v1/tasks/{real}")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        }

        // Each distinct job was charged once: the two keyed jobs of the limited round (retries are free).
        var credits = (await host.Admin().WithHeader("X-Tenant-Id", world.TenantId).GetAsync("/api/v1/entitlements")).Ok()[0].GetProperty("credits").GetInt64();
        Assert.Equal(8, credits);
    }
}
