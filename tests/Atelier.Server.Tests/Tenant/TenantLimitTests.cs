using System.Collections.Concurrent;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Npgsql;

namespace Atelier.Server.Tests.Tenant;

/// <summary>
/// The tenant's <c>maxConcurrentJobs</c> is enforced with the entitlements, and who may set a tenant's limits (issue 12,
/// item 8): the platform admin sets them; a tenant admin divides them among its apps, never above them. On the suite's
/// database (no worker: jobs stay queued).
/// </summary>
public class TenantLimitTests
{
    private static object Body(int batch = 1) => new { prompt = "limited", steps = 2, batch_size = batch };

    /// <summary>PostgreSQL: <paramref name="holding"/> takes the tenant's config (counter) row, waiting for whoever holds it;
    /// where that closes a cycle of waits, PostgreSQL ends one side of it.</summary>
    private static async Task TakeTheConfigRowAsync(NpgsqlConnection holder, NpgsqlTransaction holding, string tenantId)
    {
        await using var counter = new NpgsqlCommand("""UPDATE tenant_configs SET "UpdatedAt" = "UpdatedAt" WHERE "TenantId" = @t""", holder, holding);
        counter.Parameters.AddWithValue("t", tenantId);
        await counter.ExecuteNonQueryAsync().WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>PostgreSQL: until a statement of the server's that names <paramref name="table"/> waits for a lock.</summary>
    private static async Task UntilAStatementWaitsAsync(TestHost host, string table, string what)
    {
        await using var watch = new NpgsqlConnection(host.Database.ConnectionString);
        await watch.OpenAsync();
        await Eventually.UntilAsync(async () =>
        {
            await using var waiting = new NpgsqlCommand(
                """SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%' || @t || '%'""", watch);
            waiting.Parameters.AddWithValue("t", table);
            return (long)(await waiting.ExecuteScalarAsync())! > 0;
        }, what);
    }

    [Fact]
    public async Task MaxConcurrentJobs_ThirtyParallelSubmits_ExactlyFourAccepted()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 4))).Ok();

        // Two apps' tokens racing: the cap is the tenant's, whoever submits.
        var app = world.AppOf(host);
        var second = (await platform.PostAsync("/api/v1/apps", new { name = "second" })).Created().GetProperty("id").GetString()!;
        var other = host.Client.With((await platform.PostAsync($"/api/v1/apps/{second}/tokens", new { name = "t", scopes = new[] { "app" } })).Created()
            .GetProperty("secret").GetString());
        var answers = new ConcurrentBag<ApiResult>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 30), new ParallelOptions { MaxDegreeOfParallelism = 15 }, async (i, _) =>
            answers.Add(await (i % 2 == 0 ? app : other).PostAsync("/api/v1/predict/txt2img", Body())));
        Assert.Equal(4, answers.Count(a => a.Status == HttpStatusCode.Accepted));
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.Accepted),
            a => Assert.Equal("concurrent_jobs", a.Error(ErrorCatalog.b_agent_jobpreinvokefail, 429).GetProperty("errCode").GetString()));
        var jobs = (await world.AdminOf(host).GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok();
        Assert.Equal(4, jobs.GetProperty("total").GetInt32());

        // A finished (here: canceled) job frees its place.
        var first = jobs.GetProperty("items")[0].GetProperty("id").GetString()!;
        (await world.AdminOf(host).PostAsync($"/api/v1/agents/default/jobs/{first}/cancel")).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
    }

    [Fact]
    public async Task MaxConcurrentJobs_CountsJobsUntilTheyEnd_ThroughTheWorkerProtocol_AndALoweredCapRefusesAtOnce()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        object Cap(int n) => Scenario.ConfigWithJobCap(config, n);
        (await platform.PutAsync("/api/v1/tenant/config", Cap(2))).Ok();
        var app = world.AppOf(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);

        // A running job still counts; one that succeeds, or fails for good, frees its place.
        var running = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        (await worker.PostAsync($"/api/v1/worker/jobs/{running.GetProperty("id").GetString()}/complete",
            new { attempt = running.GetProperty("attempt").GetInt32(), result = new { images = Array.Empty<object>() } })).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        var failing = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        (await worker.PostAsync($"/api/v1/worker/jobs/{failing.GetProperty("id").GetString()}/fail",
            new { attempt = failing.GetProperty("attempt").GetInt32(), errorCode = ErrorCatalog.b_predict_predictfail.Code, errorMessage = "Sampler not found" })).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);

        // Two active now; a cap lowered to one refuses the next submit, and nothing of a refused submit is written.
        (await platform.PutAsync("/api/v1/tenant/config", Cap(1))).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        var jobs = (await world.AdminOf(host).GetAsync("/api/v1/agents/default/jobs?pageSize=100")).Ok();
        Assert.Equal(4, jobs.GetProperty("total").GetInt32());
        Assert.Equal(2, jobs.GetProperty("items").EnumerateArray().Count(j => j.GetProperty("state").GetString() is "queued" or "running"));
    }

    [Fact]
    public async Task MaxConcurrentJobs_StaysExact_AfterHundredsOfJobsEnded()
    {
        // On PostgreSQL the ends are counted apart from the tenant's counter and folded into it every ActiveJobs.FoldAt
        // ends (two and a half folds here, some ends by success, some by cancel); the cap must come out exact after them.
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 3))).Ok();
        var app = world.AppOf(host);
        var admin = world.AdminOf(host);
        var worker = await WorkerProtocol.RegisterAsync(host);
        var ends = 5 * Atelier.Data.ActiveJobs.FoldAt / 2;
        for (var i = 0; i < ends; i++)
        {
            var id = (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!;
            if (i % 5 == 4)
            {
                (await admin.PostAsync($"/api/v1/agents/default/jobs/{id}/cancel")).Ok();
                continue;
            }

            var leased = (await WorkerProtocol.LeaseAsync(worker)).Ok();
            Assert.Equal(id, leased.GetProperty("id").GetString());
            (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete",
                new { attempt = leased.GetProperty("attempt").GetInt32(), result = new { images = Array.Empty<object>() } })).Ok();
        }

        // Exactly the cap again, no more, no less; and an end still frees one place.
        var queued = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            queued.Add((await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted).GetProperty("taskId").GetString()!);
        }

        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        (await admin.PostAsync($"/api/v1/agents/default/jobs/{queued[0]}/cancel")).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        var total = (await admin.GetAsync("/api/v1/agents/default/jobs?pageSize=1")).Ok().GetProperty("total").GetInt32();
        Assert.Equal(ends + 4, total);
    }

    /// <summary>
    /// On PostgreSQL a submit that finds room sets places aside for the next ones (ActiveJobs.PostgresCreditsUp), which
    /// then pass without the tenant's counter row. A cap lowered after that must take them back: the room they were set
    /// aside from is gone. Raised again, the places come back.
    /// </summary>
    [Fact]
    public async Task MaxConcurrentJobs_LoweredAfterABurst_AdmitsOnlyUpToTheNewCap_AndRaisedAgainAdmitsMore()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 50))).Ok();
        var app = world.AppOf(host);
        var admin = world.AdminOf(host);
        for (var i = 0; i < 3; i++)
        {
            (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        }

        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 4))).Ok();
        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => app.PostAsync("/api/v1/predict/txt2img", Body())));
        Assert.Equal(1, answers.Count(a => a.Status == HttpStatusCode.Accepted));
        Assert.All(answers.Where(a => a.Status != HttpStatusCode.Accepted),
            a => Assert.Equal("concurrent_jobs", a.Error(ErrorCatalog.b_agent_jobpreinvokefail, 429).GetProperty("errCode").GetString()));
        Assert.Equal(4, (await admin.GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok().GetProperty("total").GetInt32());

        // An end frees one place at the lowered cap; raised again, the room is there at once.
        var first = (await admin.GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        (await admin.PostAsync($"/api/v1/agents/default/jobs/{first}/cancel")).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 10))).Ok();
        var more = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => app.PostAsync("/api/v1/predict/txt2img", Body())));
        Assert.Equal(6, more.Count(a => a.Status == HttpStatusCode.Accepted));
        Assert.Equal(10, (await admin.GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok().GetProperty("total").GetInt32());
    }

    /// <summary>
    /// PostgreSQL: a submit that takes the tenant's counter row sets places aside only in a place row no one holds, and
    /// never waits for one. A submit that looked for a free place can keep a place row locked and then wait for the
    /// counter row; a grant that waited for that row closed a cycle, and PostgreSQL ended one submit with a deadlock
    /// (40P01, a 500) in the queue's bench. Here another transaction holds every place row of the tenant while a submit
    /// comes: it is answered with those rows still held, and the cap stays exact afterwards. (On SQLite there are no
    /// place rows; the cap part runs there too.)
    /// </summary>
    [Fact]
    public async Task Submit_ThatTakesTheCounterRow_DoesNotWaitForPlaceRowsOthersHold_AndTheCapStaysExact()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 50))).Ok();
        var app = world.AppOf(host);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted); // takes the counter row, sets places aside

        NpgsqlConnection? holder = null;
        NpgsqlTransaction? holding = null;
        if (host.Database.Provider == "postgres")
        {
            // Every one of the tenant's place rows exists (the missing ones empty), and another transaction holds them all.
            await using (var setup = new NpgsqlConnection(host.Database.ConnectionString))
            {
                await setup.OpenAsync();
                await using var rows = new NpgsqlCommand(
                    """INSERT INTO tenant_job_credits ("TenantId", "Shard", "Credits") SELECT @t, s, 0 FROM generate_series(0, 15) s ON CONFLICT DO NOTHING""", setup);
                rows.Parameters.AddWithValue("t", world.TenantId);
                await rows.ExecuteNonQueryAsync();
            }

            holder = new NpgsqlConnection(host.Database.ConnectionString);
            await holder.OpenAsync();
            holding = await holder.BeginTransactionAsync();
            await using var lockAll = new NpgsqlCommand(
                """SELECT COUNT(*) FROM (SELECT 1 FROM tenant_job_credits WHERE "TenantId" = @t FOR UPDATE) held""", holder, holding);
            lockAll.Parameters.AddWithValue("t", world.TenantId);
            Assert.Equal(16L, (long)(await lockAll.ExecuteScalarAsync())!);
        }

        try
        {
            // No place row is free, so the submit takes the counter row; it is answered while the rows are still held.
            (await app.PostAsync("/api/v1/predict/txt2img", Body()).WaitAsync(TimeSpan.FromSeconds(60))).Ok(HttpStatusCode.Accepted);
        }
        finally
        {
            if (holding is not null)
            {
                await holding.RollbackAsync();
                await holding.DisposeAsync();
            }

            if (holder is not null)
            {
                await holder.DisposeAsync();
            }
        }

        // Two jobs are active: at a cap of 3, one more is admitted and the next refused.
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 3))).Ok();
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
    }

    /// <summary>
    /// PostgreSQL: lowering a tenant's cap takes back the places set aside, waiting for their rows while its update holds
    /// the tenant's counter row. A transaction that holds a place row and then waits for the counter row (as a submit
    /// that looked at a place row can) closes a cycle, and PostgreSQL ends the update that waited first (40P01). The
    /// platform admin's change is saved again once the other transaction is gone: 200, not 500, and the cap is exact.
    /// (On SQLite there are no place rows; the cap part runs there too.)
    /// </summary>
    [Fact]
    public async Task LoweringTheCap_EndedByADeadlock_IsSavedAgain_AndTheCapIsExact()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 50))).Ok();
        var app = world.AppOf(host);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted); // takes the counter row, sets places aside

        if (host.Database.Provider == "postgres")
        {
            await using var holder = new NpgsqlConnection(host.Database.ConnectionString);
            await holder.OpenAsync();
            await using var holding = await holder.BeginTransactionAsync();
            await using (var places = new NpgsqlCommand(
                """SELECT COUNT(*) FROM (SELECT 1 FROM tenant_job_credits WHERE "TenantId" = @t AND "Credits" > 0 FOR UPDATE) held""", holder, holding))
            {
                places.Parameters.AddWithValue("t", world.TenantId);
                Assert.True((long)(await places.ExecuteScalarAsync())! > 0, "the first submit set places aside");
            }

            // The cap lowered: its update takes the counter row and waits for the place rows held here.
            var lowering = platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 2));
            await UntilAStatementWaitsAsync(host, "tenant_configs", "the cap's update waits for the place rows");

            // This transaction now waits for the counter row: a cycle, which PostgreSQL ends on the side that waited first.
            await TakeTheConfigRowAsync(holder, holding, world.TenantId);

            await holding.RollbackAsync();
            (await lowering.WaitAsync(TimeSpan.FromSeconds(60))).Ok();
        }
        else
        {
            (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 2))).Ok();
        }

        // One job is active: at the cap of 2, one more is admitted and the next refused.
        Assert.Equal(2, (await platform.GetAsync("/api/v1/tenant/config")).Ok().GetProperty("maxConcurrentJobs").GetInt32());
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Ok(HttpStatusCode.Accepted);
        (await app.PostAsync("/api/v1/predict/txt2img", Body())).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
    }

    [Fact]
    public async Task SubmitThatChargesCredits_EndedByADeadlock_IsMadeAgain_AndChargesOnce()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = 10 })).Ok(); // a submit now charges in a transaction
        var app = world.AppOf(host);
        ApiResult submitted;

        if (host.Database.Provider == "postgres")
        {
            // Another transaction holds the tenant's entitlement row; the submit takes the tenant's config row, then waits for it.
            await using var holder = new NpgsqlConnection(host.Database.ConnectionString);
            await holder.OpenAsync();
            await using var holding = await holder.BeginTransactionAsync();
            await using (var entitlement = new NpgsqlCommand("""SELECT COUNT(*) FROM (SELECT 1 FROM entitlements WHERE "TenantId" = @t FOR UPDATE) held""", holder, holding))
            {
                entitlement.Parameters.AddWithValue("t", world.TenantId);
                Assert.Equal(1L, (long)(await entitlement.ExecuteScalarAsync())!);
            }

            var submit = app.PostAsync("/api/v1/predict/txt2img", Body(batch: 2));
            await UntilAStatementWaitsAsync(host, "entitlements", "the submit waits for the entitlement row");

            // This transaction now waits for the config row the submit holds: a cycle, which PostgreSQL ends on the submit's
            // side (it waited first). Its charge and insert are then made again, once this transaction is gone.
            await TakeTheConfigRowAsync(holder, holding, world.TenantId);

            await holding.RollbackAsync();
            submitted = await submit.WaitAsync(TimeSpan.FromSeconds(60));
        }
        else
        {
            submitted = await app.PostAsync("/api/v1/predict/txt2img", Body(batch: 2));
        }

        // Accepted, one job queued, its two credits taken once.
        submitted.Ok(HttpStatusCode.Accepted);
        Assert.Equal(8, (await platform.GetAsync("/api/v1/entitlements")).Ok().EnumerateArray().Single(e => e.GetProperty("scope").GetString() == "tenant").GetProperty("credits").GetInt64());
        Assert.Equal(1L, (await app.GetAsync("/api/v1/agents/default/jobs?state=queued")).Ok().GetProperty("total").GetInt64());
    }

    [Fact]
    public async Task TenantAdmin_CannotRaiseTheTenantsLimits_ButDividesThemAmongApps()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var second = (await admin.PostAsync("/api/v1/apps", new { name = "second" })).Created().GetProperty("id").GetString()!;

        // The tenant's own credits and limits: the platform admin's.
        Assert.Equal("platform_only", (await admin.PutAsync("/api/v1/entitlements/tenant", new { credits = 1_000_000 }))
            .Error(ErrorCatalog.b_session_tokenforbidden, 403).GetProperty("errCode").GetString());
        (await platform.PutAsync("/api/v1/entitlements/tenant", new { credits = 100, maxConcurrentJobs = 10, maxJobsPerPeriod = 50 })).Ok();
        (await admin.PostAsync("/api/v1/entitlements/tenant/credits", new { add = 5 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await admin.PostAsync("/api/v1/entitlements/tenant/credits", new { add = -5 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        var config = (await admin.GetAsync("/api/v1/tenant/config")).Ok();
        object Config(int maxJobs) => Scenario.ConfigWithJobCap(config, maxJobs);
        (await admin.PutAsync("/api/v1/tenant/config", Config(5000))).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        var unchanged = config.GetProperty("maxConcurrentJobs").GetInt32();
        Assert.Equal(unchanged, (await admin.PutAsync("/api/v1/tenant/config", Config(unchanged))).Ok().GetProperty("maxConcurrentJobs").GetInt32());
        (await platform.PutAsync("/api/v1/tenant/config", Config(5000))).Ok();

        // Dividing: each app at most the tenant's limits, the apps' credits together at most the tenant's.
        (await admin.PutAsync($"/api/v1/entitlements/{world.AppId}", new { credits = 60, maxConcurrentJobs = 10, maxJobsPerPeriod = 50 })).Ok();
        var over = (await admin.PutAsync($"/api/v1/entitlements/{second}", new { credits = 50 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        Assert.Equal("tenant_allowance", over.GetProperty("errCode").GetString());
        Assert.Contains("40 left to divide", over.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        (await admin.PutAsync($"/api/v1/entitlements/{second}", new { credits = 40 })).Ok();
        (await admin.PostAsync($"/api/v1/entitlements/{second}/credits", new { add = 1 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await admin.PutAsync($"/api/v1/entitlements/{second}", new { maxConcurrentJobs = 11 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await admin.PutAsync($"/api/v1/entitlements/{second}", new { maxJobsPerPeriod = 51 })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        // Lowering is always allowed, and what one app gives up another may take.
        (await admin.PostAsync($"/api/v1/entitlements/{world.AppId}/credits", new { add = -20 })).Ok();
        Assert.Equal(60, (await admin.PostAsync($"/api/v1/entitlements/{second}/credits", new { add = 20 })).Ok().GetProperty("credits").GetInt64());
        // The platform admin is not bound by the division.
        (await platform.PutAsync($"/api/v1/entitlements/{second}", new { credits = 1000 })).Ok();

        // What an app spends comes out of the tenant's balance too, so an app can never spend more than the tenant has.
        (await world.AppOf(host).PostAsync("/api/v1/predict/txt2img", Body(batch: 3))).Ok(HttpStatusCode.Accepted);
        var all = (await admin.GetAsync("/api/v1/entitlements")).Ok().EnumerateArray().ToDictionary(e => e.GetProperty("scope").GetString()!, e => e.GetProperty("credits").GetInt64());
        Assert.Equal((97, 37), (all["tenant"], all[world.AppId]));
    }
}
