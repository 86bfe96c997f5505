using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Worker;

/// <summary>The worker loop against the server: what happens when the engine or the worker itself goes wrong, and interrupts.</summary>
public class WorkerRunTests
{
    [Fact]
    public async Task SomethingUnexpectedInTheWorker_FailsTheJobWithUnknownException()
    {
        // The server takes no image over 64 bytes: the worker's upload is refused, which no worker expects.
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:MaxImageBytes"] = "64" });
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var error = (await world.AppOf(host).PostAsync("/sdapi/v1/txt2img", new { prompt = "too big", steps = 2 })).Error(ErrorCatalog.b_agent_unknownexception, 500);
        Assert.Contains("larger than 64 bytes", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, worker.Host.Failed);
    }

    [Fact]
    public async Task Interrupt_StopsTheCallersOwnJob_AndProgressReportsIt()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop=20000");
        var app = world.AppOf(host);
        var run = app.PostAsync("/sdapi/v1/txt2img", new { prompt = "slow", steps = 40 });
        var progress = await Eventually.ValueAsync(async () => (await app.GetAsync("/sdapi/v1/progress")).Json, p => p.GetProperty("progress").GetDouble() > 0,
            "the running job reports progress");

        Assert.InRange(progress.GetProperty("progress").GetDouble(), 0.0001, 0.99);
        Assert.Equal(40, progress.GetProperty("state").GetProperty("sampling_steps").GetInt32());
        // Another token of the tenant has no task running: its interrupt changes nothing of ours.
        Assert.Equal(0, (await world.AdminOf(host).GetAsync("/sdapi/v1/progress")).Json.GetProperty("state").GetProperty("job_count").GetInt32());
        Assert.Equal(HttpStatusCode.OK, (await world.AdminOf(host).PostAsync("/sdapi/v1/interrupt")).Status);
        Assert.False(run.IsCompleted);

        Assert.Equal(HttpStatusCode.OK, (await app.PostAsync("/sdapi/v1/interrupt")).Status);
        var answer = await run.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(HttpStatusCode.OK, answer.Status);
        Assert.Equal(0, answer.Json.GetProperty("images").GetArrayLength());
        var job = (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("items")[0];
        Assert.Equal("canceled", job.GetProperty("state").GetString());
        Assert.True((await app.GetAsync("/sdapi/v1/progress")).Json.GetProperty("state").GetProperty("interrupted").GetBoolean());
    }
}
