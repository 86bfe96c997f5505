using System.Collections.Concurrent;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Jobs;

/// <summary>The entitlement pre-check through the API, on the suite's database (no worker: jobs stay queued).</summary>
public class EntitlementTests
{
    private static object Body(int batch = 1) => new { prompt = "entitled", steps = 2, batch_size = batch };

    [Fact]
    public async Task Credits_HundredParallelSubmitsAgainstTen_ExactlyTenQueued()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId); // the tenant's own entitlements are the platform's to set
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = 10 })).Ok();
        var app = world.AppOf(host);
        var answers = new ConcurrentBag<ApiResult>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 100), new ParallelOptions { MaxDegreeOfParallelism = 25 }, async (_, _) =>
            answers.Add(await app.PostAsync("/api/v1/predict/txt2img", Body())));
        Assert.Equal(10, answers.Count(a => a.Status == HttpStatusCode.Accepted));
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.Accepted),
            a => Assert.Equal("credits", a.Error(ErrorCatalog.b_agent_jobpreinvokefail, 429).GetProperty("errCode").GetString()));
        Assert.Equal(10, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(0, (await admin.GetAsync("/api/v1/entitlements")).Ok()[0].GetProperty("credits").GetInt64());

        // A batch costs one credit per image; top-ups add atomically; the balance never goes below zero.
        Assert.Equal(3, (await platform.PostAsync("/api/v1/entitlements/tenant/credits", new { add = 3 })).Ok().GetProperty("credits").GetInt64());
        (await app.PostAsync("/api/v1/predict/txt2img", Body(batch: 4))).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        (await app.PostAsync("/api/v1/predict/txt2img", Body(batch: 3))).Ok(HttpStatusCode.Accepted);
        (await platform.PostAsync("/api/v1/entitlements/tenant/credits", new { add = -1 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // A retried submit (same idempotency key) is the same job, charged once.
        (await platform.PostAsync("/api/v1/entitlements/tenant/credits", new { add = 1 })).Ok();
        var keyed = app.WithHeader("Idempotency-Key", "once-only");
        var first = (await keyed.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString();
        Assert.Equal(first, (await keyed.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString());
        Assert.Equal(0, (await admin.GetAsync("/api/v1/entitlements")).Ok()[0].GetProperty("credits").GetInt64());
    }

    [Fact]
    public async Task ConcurrentJobs_PerApp_AndJobsPerPeriod_PerTenant()
    {
        await using var host = await TestHost.StartAsync(fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId); // the tenant's own entitlements are the platform's to set
        var app = world.AppOf(host);
        var otherApp = (await admin.PostAsync("/api/v1/apps", new { name = "second" })).Created().GetProperty("id").GetString()!;
        var otherToken = (await admin.PostAsync($"/api/v1/apps/{otherApp}/tokens", new { name = "t", scopes = new[] { "app" } })).Created().GetProperty("secret").GetString()!;
        var other = host.Client.With(otherToken);

        Assert.Equal(2, (await admin.PutAsync($"/api/v1/entitlements/{world.AppId}", new { maxConcurrentJobs = 2 })).Ok().GetProperty("maxConcurrentJobs").GetInt32());
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        var second = (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString();
        var refused = (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        Assert.Equal("concurrent_jobs", refused.GetProperty("errCode").GetString());
        (await other.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted); // another app: its own limits
        (await app.PostAsync($"/api/v1/tasks/{second}/cancellation")).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted); // a slot came free

        // Four jobs so far in the tenant (the refused one was never made); at most five per minute.
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { maxJobsPerPeriod = 5, periodSeconds = 60 })).Ok();
        (await other.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        Assert.Equal("jobs_per_period", (await other.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429)
            .GetProperty("errCode").GetString());
        host.Clock!.Advance(TimeSpan.FromSeconds(61));
        (await other.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);

        (await admin.PutAsync("/api/v1/entitlements/app_nope", new { credits = 1 })).Error(ErrorCatalog.p_common_inputinvalid, 404);
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = -5 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PutAsync("/api/v1/entitlements/tenant", new { credits = 5 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task Credits_OfJobsThatDoNotSucceed_AreGivenBackOnce()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId); // the tenant's own entitlements are the platform's to set
        var app = world.AppOf(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = 10 })).Ok();
        (await admin.PutAsync($"/api/v1/entitlements/{world.AppId}", new { credits = 5 })).Ok();
        async Task<(long Tenant, long App)> BalanceAsync()
        {
            var all = (await admin.GetAsync("/api/v1/entitlements")).Ok().EnumerateArray().ToList();
            return (all.Single(e => e.GetProperty("scope").GetString() == "tenant").GetProperty("credits").GetInt64(),
                all.Single(e => e.GetProperty("scope").GetString() == world.AppId).GetProperty("credits").GetInt64());
        }

        async Task<string> SubmitAsync(int batch) =>
            (await app.PostAsync("/api/v1/agents/default/jobs", new { input = Body(batch) })).Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;

        // Canceled while queued: both balances back.
        var canceled = await SubmitAsync(2);
        Assert.Equal((8, 3), await BalanceAsync());
        (await app.PostAsync($"/api/v1/agents/default/jobs/{canceled}/cancel")).Ok();
        Assert.Equal((10, 5), await BalanceAsync());
        (await app.PostAsync($"/api/v1/agents/default/jobs/{canceled}/cancel")).Ok();
        Assert.Equal((10, 5), await BalanceAsync());

        // Failed by the worker: back.
        var failed = await SubmitAsync(2);
        Assert.Equal(failed, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("id").GetString());
        (await worker.PostAsync($"/api/v1/worker/jobs/{failed}/fail", new { attempt = 1, errorCode = ErrorCatalog.b_predict_predictfail.Code, errorMessage = "out of memory" })).Ok();
        Assert.Equal((10, 5), await BalanceAsync());

        // Succeeded: spent.
        var done = await SubmitAsync(1);
        Assert.Equal(done, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("id").GetString());
        (await worker.PostAsync($"/api/v1/worker/jobs/{done}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();
        (await app.PostAsync($"/api/v1/agents/default/jobs/{done}/cancel")).Ok();
        Assert.Equal((9, 4), await BalanceAsync());
    }
}
