using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Jobs;

public class JobsApiTests(SharedHost shared) : IClassFixture<SharedHost>
{
    private TestHost Host => shared.Host;
    private static readonly object Input = new { prompt = "a red fox", steps = 8 };

    [Fact]
    public async Task Init_GivesEveryTenantADefaultAgent()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var agents = (await world.AppOf(Host).GetAsync("/api/v1/agents")).Ok();
        Assert.Equal("default", Assert.Single(agents.EnumerateArray()).GetProperty("name").GetString());
    }

    [Fact]
    public async Task Submit_ClientJobId_IsIdempotentByBody()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var first = await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "order-1", input = Input });
        var job = first.Ok(HttpStatusCode.Accepted);
        Assert.Equal("queued", job.GetProperty("state").GetString());
        var again = (await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "order-1", input = Input })).Ok();
        Assert.Equal(job.GetProperty("id").GetString(), again.GetProperty("id").GetString());
        (await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "order-1", input = new { prompt = "a cat" } }))
            .Error(ErrorCatalog.b_agent_jobidexisted, 409);
        Assert.Equal(1, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Submit_TwentyParallelRetries_OneJob()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "burst", input = Input })));
        Assert.All(results, r => Assert.True(r.Status is HttpStatusCode.Accepted or HttpStatusCode.OK, r.Text));
        Assert.Single(results.Select(r => r.Json.GetProperty("data").GetProperty("id").GetString()).Distinct());
        Assert.Single(results, r => r.Status == HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Get_ByIdOrClientId_UnknownIsJobNotFound()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var id = (await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "mine", input = Input })).Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        Assert.Equal(id, (await app.GetAsync("/api/v1/agents/default/jobs/mine")).Ok().GetProperty("id").GetString());
        Assert.Equal("mine", (await app.GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("clientJobId").GetString());
        (await app.GetAsync("/api/v1/agents/default/jobs/job_ghost")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        (await app.PostAsync("/api/v1/agents/default/jobs/job_ghost/cancel")).Error(ErrorCatalog.b_agent_jobnotfound, 404);
        (await app.GetAsync("/api/v1/agents/agt_ghost/jobs")).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }

    [Fact]
    public async Task Cancel_QueuedJob_IsCanceledAtOnce()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var id = (await app.PostAsync("/api/v1/agents/default/jobs", new { input = Input })).Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        var canceled = (await app.PostAsync($"/api/v1/agents/default/jobs/{id}/cancel")).Ok();
        Assert.Equal("canceled", canceled.GetProperty("state").GetString());
        Assert.Equal(1, (await app.GetAsync("/api/v1/agents/default/jobs?state=canceled")).Ok().GetProperty("total").GetInt32());
        var result = (await app.GetAsync($"/api/v1/agents/default/jobs/{id}/result")).Ok();
        Assert.Equal("canceled", result.GetProperty("state").GetString());
    }

    [Fact]
    public async Task Submit_WithoutInputOrWithBadPriority_IsRefused()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "x" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { input = Input, priority = 1000 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await app.PostAsync("/api/v1/agents/default/jobs", new { jobId = "has space", input = Input })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(0, (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("total").GetInt32());
    }
}
