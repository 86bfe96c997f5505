using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Worker;

/// <summary>The worker protocol over HTTP, each test on a server of its own (workers lease across tenants).</summary>
public class WorkerProtocolTests
{
    internal static async Task<(TestHost Host, TenantWorld World, ApiClient Worker)> StartAsync(bool fakeClock = false, IDictionary<string, string>? settings = null)
    {
        var config = new Dictionary<string, string> { ["Atelier:Jobs:RescueIntervalSeconds"] = "5" };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>())
        {
            config[k] = v;
        }

        var host = await TestHost.StartAsync(config, fakeClock);
        var world = await Scenario.NewTenantAsync(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        return (host, world, worker);
    }

    internal static async Task<string> SubmitAsync(TestHost host, TenantWorld world, string? clientId = null, object? input = null) =>
        (await world.AppOf(host).PostAsync("/api/v1/agents/default/jobs", new { jobId = clientId, input = input ?? new { prompt = "a red fox", steps = 8 } }))
        .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;

    [Fact]
    public async Task WorkerKey_OnlyOpensTheWorkerRoutes()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        (await worker.GetAsync("/api/v1/apps")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await worker.GetAsync("/api/v1/accounts")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await worker.PostAsync("/sdapi/v1/txt2img", new { prompt = "x" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await world.AdminOf(host).PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await host.Admin().PostAsync("/api/v1/worker/lease", new { workerId = "w1" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        Assert.Equal(HttpStatusCode.NoContent, (await WorkerProtocol.LeaseAsync(worker)).Status);
        // Another key may not lease as w1, nor take its id over.
        var other = host.Client.With((await host.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!);
        Assert.Equal("not_registered", (await WorkerProtocol.LeaseAsync(other)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        (await other.PostAsync("/api/v1/worker/register", new { workerId = "w1", engine = "noop", slots = 1 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        var workers = (await host.Admin().GetAsync("/api/v1/platform/workers")).Ok();
        Assert.Equal("w1", workers[0].GetProperty("id").GetString());
    }

    [Fact]
    public async Task HotRequestInfo_MustHaveOneEntryPerSlot()
    {
        var (host, _, _) = await StartAsync();
        await using var __ = host;
        var worker = await WorkerProtocol.RegisterAsync(host, "w4", slots: 4);
        var error = (await WorkerProtocol.LeaseAsync(worker, "w4", hot: new string?[3])).Error(ErrorCatalog.b_agent_hotrequestinfosizenotmatch, 400);
        Assert.Contains("3 hot request infos", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        (await worker.PostAsync("/api/v1/worker/lease", new { workerId = "w4", slot = 0 })).Error(ErrorCatalog.b_agent_hotrequestinfosizenotmatch, 400);
        (await WorkerProtocol.LeaseAsync(worker, "w4", slot: 4, hot: new string?[4])).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal(HttpStatusCode.NoContent, (await WorkerProtocol.LeaseAsync(worker, "w4", slot: 3, hot: ["mv_a", null, null, "mv_b"])).Status);
        var listed = (await host.Admin().GetAsync("/api/v1/platform/workers")).Ok().EnumerateArray().Single(w => w.GetProperty("id").GetString() == "w4");
        Assert.Equal("mv_b", listed.GetProperty("hot")[3].GetString());
    }

    [Fact]
    public async Task Lease_Progress_Images_Complete_TheCallerGetsTheResult()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var id = await SubmitAsync(host, world, "order-7");
        var leased = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        Assert.Equal(id, leased.GetProperty("id").GetString());
        Assert.Equal(1, leased.GetProperty("attempt").GetInt32());
        Assert.Equal(world.TenantId, leased.GetProperty("tenantId").GetString());
        Assert.Equal("a red fox", leased.GetProperty("request").GetProperty("prompt").GetString());
        Assert.Equal("atelier-demo", leased.GetProperty("model").GetProperty("name").GetString());
        var app = world.AppOf(host);
        Assert.Equal("running", (await app.GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());

        var beat = (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1, step = 4, steps = 8, fraction = 0.5 })).Ok();
        Assert.False(beat.GetProperty("cancelRequested").GetBoolean());
        var progress = (await app.GetAsync($"/api/v1/tasks/{id}/progress")).Ok().GetProperty("progress");
        Assert.Equal((4, 8, 0.5), (progress.GetProperty("step").GetInt32(), progress.GetProperty("steps").GetInt32(), progress.GetProperty("fraction").GetDouble()));

        var png = Atelier.Engine.Images.Png.Encode(new byte[4 * 4 * 3], 4, 4);
        var stored = await WorkerProtocol.PutImageAsync(worker, id, 1, 0, png);
        Assert.Equal(HttpStatusCode.OK, stored.Status);
        var image = stored.Ok();
        Assert.Equal(png.Length, image.GetProperty("size").GetInt64());
        // Not a PNG, or the wrong attempt: refused.
        (await WorkerProtocol.PutImageAsync(worker, id, 1, 1, "GIF89a-not-a-png"u8.ToArray())).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await WorkerProtocol.PutImageAsync(worker, id, 2, 1, png)).Error(ErrorCatalog.p_common_inputinvalid, 409);

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new
        {
            attempt = 1,
            result = new { images = new[] { new { key = image.GetProperty("key").GetString(), sha256 = image.GetProperty("sha256").GetString(), size = png.Length, seed = 42, infotext = "a red fox\nSeed: 42" } }, info = "{}" },
        })).Ok();
        var result = (await app.GetAsync("/api/v1/agents/default/jobs/order-7/result")).Ok();
        Assert.Equal("succeeded", result.GetProperty("state").GetString());
        var first = result.GetProperty("images")[0];
        Assert.Equal(42, first.GetProperty("seed").GetInt64());
        using var fetched = await app.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, first.GetProperty("url").GetString())
        {
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", world.AppToken) },
        });
        Assert.Equal("image/png", fetched.Content.Headers.ContentType?.MediaType);
        Assert.Equal(png, await fetched.Content.ReadAsByteArrayAsync());
        // Completing twice is a stale answer.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { } })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        var done = (await app.GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok();
        Assert.Equal(1.0, done.GetProperty("progress").GetProperty("fraction").GetDouble());
        Assert.True(done.GetProperty("resultExpiresAt").GetDateTime() > DateTime.UtcNow.AddHours(23));
    }

    /// <summary>
    /// One call completes a job and leases the slot's next: the lease's fields are checked before the completion (a
    /// refused one completes nothing), a stale completion leases nothing, and with nothing queued the job is completed
    /// and the answer is 204.
    /// </summary>
    [Fact]
    public async Task CompleteAndLease_CompletesThenHandsTheSlotItsNextJob()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var app = world.AppOf(host);
        var first = await SubmitAsync(host, world);
        Assert.Equal(first, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("id").GetString());
        var second = await SubmitAsync(host, world);
        var result = new { images = Array.Empty<object>() };
        string State(JsonElement job) => job.GetProperty("state").GetString()!;

        (await worker.PostAsync($"/api/v1/worker/jobs/{first}/complete-and-lease", new { attempt = 1, result, next = new { workerId = "w1", slot = 5, hot = new string?[1] } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await worker.PostAsync($"/api/v1/worker/jobs/{first}/complete-and-lease", new { attempt = 1, result, next = new { workerId = "w9", slot = 0, hot = new string?[1] } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await worker.PostAsync($"/api/v1/worker/jobs/{first}/complete-and-lease", new { attempt = 1, result })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal("running", State((await app.GetAsync($"/api/v1/agents/default/jobs/{first}")).Ok()));

        var stale = (await worker.PostAsync($"/api/v1/worker/jobs/{first}/complete-and-lease", new { attempt = 2, result, next = new { workerId = "w1", slot = 0, hot = new string?[1] } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409);
        Assert.Equal("stale_attempt", stale.GetProperty("errCode").GetString());
        Assert.Equal("queued", State((await app.GetAsync($"/api/v1/agents/default/jobs/{second}")).Ok()));

        var next = (await worker.PostAsync($"/api/v1/worker/jobs/{first}/complete-and-lease", new { attempt = 1, result, next = new { workerId = "w1", slot = 0, hot = new string?[1] } })).Ok();
        Assert.Equal((second, 1), (next.GetProperty("id").GetString(), next.GetProperty("attempt").GetInt32()));
        Assert.Equal("succeeded", State((await app.GetAsync($"/api/v1/agents/default/jobs/{first}")).Ok()));
        Assert.Equal("running", State((await app.GetAsync($"/api/v1/agents/default/jobs/{second}")).Ok()));

        var none = await worker.PostAsync($"/api/v1/worker/jobs/{second}/complete-and-lease", new { attempt = 1, result, next = new { workerId = "w1", slot = 0, hot = new string?[1], waitSeconds = 0 } });
        Assert.Equal(HttpStatusCode.NoContent, none.Status);
        Assert.Equal("succeeded", State((await app.GetAsync($"/api/v1/agents/default/jobs/{second}")).Ok()));
    }

    /// <summary>
    /// The lease's own second look is a minute away and its wait half a minute: only the submit's signal can hand it the
    /// job (without it the wait ends at its deadline with 204).
    /// </summary>
    [Fact]
    public async Task Lease_WaitingWorker_IsWokenBySubmit()
    {
        var (host, world, worker) = await StartAsync(settings: new Dictionary<string, string> { ["Atelier:Jobs:LeaseRecheckSeconds"] = "60" });
        await using var _ = host;
        var lease = WorkerProtocol.LeaseAsync(worker, wait: 30);
        var registry = host.Services.GetRequiredService<Atelier.Core.Jobs.WorkerRegistry>();
        await Eventually.UntilAsync(() => registry.IsWaiting("w1/0"), "the lease request is waiting");
        var id = await SubmitAsync(host, world);
        var leased = (await lease).Ok();
        Assert.Equal(id, leased.GetProperty("id").GetString());
    }

    [Fact]
    public async Task ExpiredLease_IsRescued_AndTheStaleAttemptIsRefused()
    {
        var (host, world, worker) = await StartAsync(fakeClock: true);
        await using var _ = host;
        var id = await SubmitAsync(host, world);
        Assert.Equal(1, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("attempt").GetInt32());
        host.Clock!.Advance(TimeSpan.FromSeconds(31)); // past the 30 s lease; the rescuer runs every 5 s of this clock
        host.Clock.Advance(TimeSpan.FromSeconds(5));
        var second = await Eventually.ValueAsync(() => WorkerProtocol.LeaseAsync(worker), r => r.Status == HttpStatusCode.OK, "the rescued job can be leased again");
        var leased = second.Ok();
        Assert.Equal((id, 2), (leased.GetProperty("id").GetString(), leased.GetProperty("attempt").GetInt32()));
        var stale = (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { late = true } })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        Assert.Equal("stale_attempt", stale.GetProperty("errCode").GetString());
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 })).Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 2, result = new { images = Array.Empty<object>() } })).Ok();
    }

    [Fact]
    public async Task Fail_RecordsTheEngineError_AndAnUnknownCodeBecomesUnknownException()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        var id = await SubmitAsync(host, world);
        (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/fail", new { attempt = 1, errorCode = ErrorCatalog.b_predict_predictfail.Code, errorMessage = "Sampler not found" })).Ok();
        var job = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok();
        Assert.Equal("failed", job.GetProperty("state").GetString());
        Assert.Equal(ErrorCatalog.b_predict_predictfail.Code, job.GetProperty("errorCode").GetString());
        Assert.Equal("Sampler not found", job.GetProperty("errorMessage").GetString());
        var result = (await world.AppOf(host).GetAsync($"/api/v1/tasks/{id}/result")).Ok();
        Assert.Equal(ErrorCatalog.b_predict_predictfail.Code, result.GetProperty("errorCode").GetString());

        var other = await SubmitAsync(host, world);
        (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await worker.PostAsync($"/api/v1/worker/jobs/{other}/fail", new { attempt = 1, errorCode = "segfault", errorMessage = "boom" })).Ok();
        Assert.Equal(ErrorCatalog.b_agent_unknownexception.Code,
            (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{other}")).Ok().GetProperty("errorCode").GetString());
    }

    [Fact]
    public async Task Cancel_Running_TheWorkerIsTold_AndAJobThatDoesNotStopIsAborted()
    {
        var (host, world, worker) = await StartAsync(fakeClock: true);
        await using var _ = host;
        var app = world.AppOf(host);
        var stops = await SubmitAsync(host, world);
        (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await app.PostAsync($"/api/v1/agents/default/jobs/{stops}/cancel")).Ok();
        Assert.True((await worker.PostAsync($"/api/v1/worker/jobs/{stops}/heartbeat", new { attempt = 1 })).Ok().GetProperty("cancelRequested").GetBoolean());
        (await worker.PostAsync($"/api/v1/worker/jobs/{stops}/fail", new { attempt = 1, errorCode = "canceled", errorMessage = "interrupted" })).Ok();
        Assert.Equal("canceled", (await app.GetAsync($"/api/v1/agents/default/jobs/{stops}")).Ok().GetProperty("state").GetString());

        var stuck = await SubmitAsync(host, world);
        (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await app.PostAsync($"/api/v1/tasks/{stuck}/cancellation")).Ok();
        // The worker keeps renewing but never stops: past the grace period (15 s) the rescuer aborts it.
        for (var i = 0; i < 5; i++)
        {
            host.Clock!.Advance(TimeSpan.FromSeconds(5));
            await worker.PostAsync($"/api/v1/worker/jobs/{stuck}/heartbeat", new { attempt = 1 });
        }

        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/agents/default/jobs/{stuck}")).Ok().GetProperty("state").GetString() == "aborted",
            "the job that did not stop is aborted");
        (await worker.PostAsync($"/api/v1/worker/jobs/{stuck}/complete", new { attempt = 1, result = new { } })).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }

    [Fact]
    public async Task Scheduling_HotModelFirst_StarvingJobsFirst_TenantsRoundRobin()
    {
        var (host, world, _) = await StartAsync(fakeClock: true);
        await using var __ = host;
        var worker = await WorkerProtocol.RegisterAsync(host, "w2", slots: 2);
        var (a, b) = await Library.TwoModelsAsync(host, world);
        object Input(string model, int n) => new { prompt = $"{model} {n}", override_settings = new { sd_model_checkpoint = model } };
        var a1 = await SubmitAsync(host, world, input: Input(a, 1));
        host.Clock!.Advance(TimeSpan.FromMilliseconds(10));
        var b1 = await SubmitAsync(host, world, input: Input(b, 1));
        host.Clock.Advance(TimeSpan.FromMilliseconds(10));
        var a2 = await SubmitAsync(host, world, input: Input(a, 2));

        async Task<JsonElement> Lease(int slot, string?[] hot) => (await WorkerProtocol.LeaseAsync(worker, "w2", slot, hot)).Ok();
        var first = await Lease(0, [null, null]);
        Assert.Equal(a1, first.GetProperty("id").GetString()); // nothing loaded: the oldest
        var versionA = first.GetProperty("model").GetProperty("versionId").GetString();
        var second = await Lease(1, [versionA, null]);
        Assert.Equal(b1, second.GetProperty("id").GetString());
        var versionB = second.GetProperty("model").GetProperty("versionId").GetString();
        host.Clock.Advance(TimeSpan.FromMilliseconds(10));
        var b2 = await SubmitAsync(host, world, input: Input(b, 2));
        // Slot 1 has B loaded: it takes B's job though A's is older.
        Assert.Equal(b2, (await Lease(1, [versionA, versionB])).GetProperty("id").GetString());
        foreach (var done in new[] { a1, b1, b2 })
        {
            (await worker.PostAsync($"/api/v1/worker/jobs/{done}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();
        }

        // A job that waited past the bound (30 s) goes to any free slot, before the hot model's.
        host.Clock.Advance(TimeSpan.FromSeconds(31));
        var b3 = await SubmitAsync(host, world, input: Input(b, 3));
        Assert.Equal(a2, (await Lease(1, [versionA, versionB])).GetProperty("id").GetString());
        Assert.Equal(b3, (await Lease(1, [versionA, versionB])).GetProperty("id").GetString());

        // Two tenants at the same priority: a burst of six from one does not go before the other's two.
        var other = await Scenario.NewTenantAsync(host);
        var burst = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            burst.Add(await SubmitAsync(host, world));
            host.Clock.Advance(TimeSpan.FromMilliseconds(5));
        }

        var late = new[] { await SubmitAsync(host, other), await SubmitAsync(host, other) };
        var order = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            order.Add((await Lease(0, [null, null])).GetProperty("id").GetString()!);
        }

        Assert.Equal([burst[0], late[0], burst[1], late[1], burst[2], burst[3], burst[4], burst[5]], order);
    }
}

/// <summary>Routing a new job to the waiting slot that holds its model.</summary>
public class HotRoutingTests
{
    /// <summary>On a fake clock: the slot that must not take the job waits until the test moves the clock past its wait.</summary>
    [Fact]
    public async Task NewJob_GoesToTheWaitingSlotHoldingItsModel_NotToAnotherWaitingSlot()
    {
        var (host, world, _) = await WorkerProtocolTests.StartAsync(fakeClock: true);
        await using var __ = host;
        var worker = await WorkerProtocol.RegisterAsync(host, "w2", slots: 2);
        var (a, b) = await Library.TwoModelsAsync(host, world);
        object Input(string model) => new { prompt = model, override_settings = new { sd_model_checkpoint = model } };
        // Learn the version ids: run one job of each through slot 0.
        await WorkerProtocolTests.SubmitAsync(host, world, input: Input(a));
        var va = (await WorkerProtocol.LeaseAsync(worker, "w2", 0, [null, null])).Ok().GetProperty("model").GetProperty("versionId").GetString();
        await WorkerProtocolTests.SubmitAsync(host, world, input: Input(b));
        var vb = (await WorkerProtocol.LeaseAsync(worker, "w2", 0, [null, null])).Ok().GetProperty("model").GetProperty("versionId").GetString();

        for (var round = 0; round < 3; round++)
        {
            // Slot 1 holds B and waits; slot 0 holds A and waits too; a B job arrives: slot 1 gets it, slot 0 keeps waiting.
            var holder = WorkerProtocol.LeaseAsync(worker, "w2", 1, [va, vb], wait: 10);
            var other = WorkerProtocol.LeaseAsync(worker, "w2", 0, [va, vb], wait: 3);
            var registry = host.Services.GetRequiredService<Atelier.Core.Jobs.WorkerRegistry>();
            await Eventually.UntilAsync(() => registry.IsWaiting("w2/0") && registry.IsWaiting("w2/1"), "both slots wait");
            var id = await WorkerProtocolTests.SubmitAsync(host, world, input: Input(b));
            Assert.Equal(id, (await holder).Ok().GetProperty("id").GetString());
            Assert.False(other.IsCompleted);
            host.Clock!.Advance(TimeSpan.FromSeconds(3));
            Assert.Equal(HttpStatusCode.NoContent, (await other).Status);
        }
    }
}

/// <summary>Two replicas on one database: a worker waiting on one gets a job submitted on the other.</summary>
public class ReplicaWakeTests
{
    /// <summary>
    /// PostgreSQL: B LISTENs from its start; waits until its listener has heard a notification of A's making, then takes
    /// the warm-up jobs out of the way (worker <c>wb</c> of <paramref name="slots"/> slots: a lease names each slot's model).
    /// </summary>
    private static async Task HearsAsync(TestHost a, TestHost b, TenantWorld world, ApiClient worker, int slots)
    {
        if (a.Database.Provider != "postgres")
        {
            return;
        }

        var listening = b.Services.GetRequiredService<Atelier.Core.Jobs.JobSignal>();
        await Eventually.UntilAsync(async () =>
        {
            using var waiter = listening.Register(null, null);
            var heard = waiter.WaitAsync(TimeSpan.FromMilliseconds(500), CancellationToken.None);
            await WorkerProtocolTests.SubmitAsync(a, world, input: new { prompt = "warm-up" });
            return await heard is not null;
        }, "replica B hears A's notifications");
        for (var drained = await WorkerProtocol.LeaseAsync(worker, "wb", hot: new string?[slots]); drained.Status != HttpStatusCode.NoContent;
             drained = await WorkerProtocol.LeaseAsync(worker, "wb", hot: new string?[slots]))
        {
            drained.Ok();
        }
    }

    /// <summary>
    /// PostgreSQL: B's own second look is a minute away and the lease waits half a minute, so only the NOTIFY that A's
    /// submit sends can wake it. SQLite has no notifications between replicas: B's next look (every second here) finds it.
    /// </summary>
    [Fact]
    public async Task Lease_WaitingOnReplicaB_GetsAJobSubmittedOnReplicaA()
    {
        await using var a = await TestHost.StartAsync();
        var recheck = a.Database.Provider == "postgres" ? "60" : "1";
        await using var b = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:LeaseRecheckSeconds"] = recheck },
            database: a.Database, adminKey: a.AdminKey);
        var world = await Scenario.NewTenantAsync(a);
        var key = (await a.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        var worker = b.Client.With(key);
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "wb", engine = "noop", slots = 1 })).Ok();
        await HearsAsync(a, b, world, worker, 1);

        var lease = WorkerProtocol.LeaseAsync(worker, "wb", wait: 30);
        var registry = b.Services.GetRequiredService<Atelier.Core.Jobs.WorkerRegistry>();
        await Eventually.UntilAsync(() => registry.IsWaiting("wb/0"), "the lease request is waiting on B");
        var id = await WorkerProtocolTests.SubmitAsync(a, world);
        Assert.Equal(id, (await lease).Ok().GetProperty("id").GetString());
    }

    /// <summary>
    /// Jobs submitted together on A wake as many slots on B. A's notifications go after their commits, several in one
    /// transaction of A's own, and PostgreSQL delivers identical payloads of one transaction once: jobs of the same agent
    /// and model gathered there go as one notification with their count, which B turns into that many wakes. With B's
    /// own look five minutes away and each lease waiting as long (its last look at the end of its wait would find the
    /// job too), every slot must be woken by A's notifications: the leases must all be answered long before that.
    /// </summary>
    [Fact]
    public async Task Leases_WaitingOnReplicaB_EachGetOneOfJobsSubmittedTogetherOnReplicaA()
    {
        await using var a = await TestHost.StartAsync();
        var recheck = a.Database.Provider == "postgres" ? "300" : "1";
        await using var b = await TestHost.StartAsync(
            new Dictionary<string, string> { ["Atelier:Jobs:LeaseRecheckSeconds"] = recheck, ["Atelier:Jobs:MaxLeaseWaitSeconds"] = "300" },
            database: a.Database, adminKey: a.AdminKey);
        var world = await Scenario.NewTenantAsync(a);
        var key = (await a.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        var worker = b.Client.With(key);
        const int slots = 6;
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "wb", engine = "noop", slots })).Ok();
        await HearsAsync(a, b, world, worker, slots);

        var registry = b.Services.GetRequiredService<Atelier.Core.Jobs.WorkerRegistry>();
        var leases = Enumerable.Range(0, slots).Select(i => WorkerProtocol.LeaseAsync(worker, "wb", slot: i, hot: new string?[slots], wait: 300)).ToList();
        await Eventually.UntilAsync(() => Enumerable.Range(0, slots).All(i => registry.IsWaiting($"wb/{i}")), "every slot waits on B");
        var ids = await Task.WhenAll(Enumerable.Range(0, slots).Select(i => WorkerProtocolTests.SubmitAsync(a, world, input: new { prompt = $"together {i}", steps = 8 })));
        var leased = await Task.WhenAll(leases).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(ids.Order(), leased.Select(l => l.Ok().GetProperty("id").GetString()!).Order());
    }
}
