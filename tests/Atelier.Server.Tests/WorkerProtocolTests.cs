using System.Diagnostics;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests;

/// <summary>The worker protocol over HTTP, each test on a server of its own (workers lease across tenants).</summary>
public class WorkerProtocolTests
{
    private static async Task<(TestHost Host, TenantWorld World, ApiClient Worker)> StartAsync(bool fakeClock = false)
    {
        var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:RescueIntervalSeconds"] = "5" }, fakeClock);
        var world = await Scenario.NewTenantAsync(host);
        var key = (await host.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        Assert.StartsWith("atw_", key, StringComparison.Ordinal);
        return (host, world, host.Client.With(key));
    }

    private static async Task<string> SubmitAsync(TestHost host, TenantWorld world, string? clientId = null) =>
        (await world.AppOf(host).PostAsync("/api/v1/agents/default/jobs", new { jobId = clientId, input = new { prompt = "a red fox", steps = 8 } }))
        .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;

    [Fact]
    public async Task WorkerKey_OnlyOpensTheWorkerRoutes()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        (await worker.GetAsync("/api/v1/apps")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await worker.GetAsync("/api/v1/accounts")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await world.AdminOf(host).PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await host.Admin().PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        var empty = await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w1", waitSeconds = 0 });
        Assert.Equal(HttpStatusCode.NoContent, empty.Status);
    }

    [Fact]
    public async Task Lease_Heartbeat_Complete_TheJobSucceedsWithItsResult()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var id = await SubmitAsync(host, world, "order-7");
        var leased = (await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Ok();
        Assert.Equal(id, leased.GetProperty("id").GetString());
        Assert.Equal(1, leased.GetProperty("attempt").GetInt32());
        Assert.Equal(world.TenantId, leased.GetProperty("tenantId").GetString());
        Assert.Equal("a red fox", leased.GetProperty("request").GetProperty("prompt").GetString());
        Assert.Equal("running", (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());

        var beat = (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 })).Ok();
        Assert.False(beat.GetProperty("cancelRequested").GetBoolean());
        (await world.AppOf(host).PostAsync($"/api/v1/agents/default/jobs/{id}/cancel")).Ok();
        Assert.True((await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 })).Ok().GetProperty("cancelRequested").GetBoolean());

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = new[] { "img_1" } } })).Ok();
        var result = (await world.AppOf(host).GetAsync("/api/v1/agents/default/jobs/order-7/result")).Ok();
        Assert.Equal("succeeded", result.GetProperty("state").GetString());
        Assert.Equal("img_1", result.GetProperty("result").GetProperty("images")[0].GetString());
        // Completing twice is a stale answer.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { } })).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }

    [Fact]
    public async Task Lease_WaitingWorker_IsWokenBySubmit()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var watch = Stopwatch.StartNew();
        var lease = worker.PostAsync("/api/v1/worker/lease", new { workerId = "w1", waitSeconds = 20 });
        await Task.Delay(300);
        Assert.False(lease.IsCompleted);
        var id = await SubmitAsync(host, world);
        var leased = (await lease).Ok();
        Assert.Equal(id, leased.GetProperty("id").GetString());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"woken after {watch.Elapsed}");
    }

    [Fact]
    public async Task ExpiredLease_IsRescued_AndTheStaleAttemptIsRefused()
    {
        var (host, world, worker) = await StartAsync(fakeClock: true);
        await using var _ = host;
        var id = await SubmitAsync(host, world);
        Assert.Equal(1, (await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Ok().GetProperty("attempt").GetInt32());
        host.Clock!.Advance(TimeSpan.FromSeconds(31)); // past the 30 s lease; the rescuer runs every 5 s of this clock
        host.Clock.Advance(TimeSpan.FromSeconds(5));
        ApiResult? second = null;
        for (var i = 0; i < 200; i++)
        {
            second = await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w2" });
            if (second.Status == HttpStatusCode.OK)
            {
                break;
            }

            await Task.Delay(25);
        }

        var leased = second!.Ok();
        Assert.Equal((id, 2), (leased.GetProperty("id").GetString(), leased.GetProperty("attempt").GetInt32()));
        var stale = (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { late = true } })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        Assert.Equal("stale_attempt", stale.GetProperty("errCode").GetString());
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 2, result = new { ok = true } })).Ok();
    }

    [Fact]
    public async Task Fail_RecordsTheEngineError()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var id = await SubmitAsync(host, world);
        (await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Ok();
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/fail", new { attempt = 1, errorCode = ErrorCatalog.b_predict_predictfail.Code, errorMessage = "Sampler not found" })).Ok();
        var job = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok();
        Assert.Equal("failed", job.GetProperty("state").GetString());
        Assert.Equal(ErrorCatalog.b_predict_predictfail.Code, job.GetProperty("errorCode").GetString());
        Assert.Equal("Sampler not found", job.GetProperty("errorMessage").GetString());
    }
}
