using System.Net;
using System.Net.Http.Headers;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Platform;

/// <summary><c>/metrics</c> (Prometheus text, off by default and guarded when on) and the health endpoints on the framework's checks.</summary>
public class MetricsTests
{
    /// <summary>The value of the one series of <paramref name="metric"/> whose labels include every one of <paramref name="labels"/> (<c>name="value"</c>); null when there is none.</summary>
    private static string? SeriesValue(string scrape, string metric, params string[] labels)
    {
        var line = scrape.Split('\n').SingleOrDefault(l => l.StartsWith(metric + "{", StringComparison.Ordinal) && labels.All(x => l.Contains(x, StringComparison.Ordinal)));
        return line?[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0];
    }


    private static async Task<(HttpStatusCode Status, string Text)> ScrapeAsync(HttpClient http, string? bearer)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        if (bearer is not null)
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var resp = await http.SendAsync(req);
        return (resp.StatusCode, await resp.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_Off_IsNoRoute_HealthAndReadinessAnswer()
    {
        await using var host = await TestHost.StartAsync();
        (await host.Admin().GetAsync("/metrics")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        var live = await host.Client.GetAsync("/healthz");
        Assert.Equal((HttpStatusCode.OK, "ok"), (live.Status, live.Text));
        var ready = await host.Client.GetAsync("/readyz");
        Assert.Equal((HttpStatusCode.OK, "ready"), (ready.Status, ready.Text));
    }

    /// <summary>
    /// A real <c>atelier serve</c> process and a real worker process: the framework's own meters (ASP.NET Core's request
    /// durations) are per process, so the server is not one of the test hosts that share this test process.
    /// </summary>
    [Fact]
    public async Task Metrics_On_NeedsTheAdminKeyOrTheScrapeToken_AndShowsOurInstruments()
    {
        var scrapeToken = "scrape-" + Guid.NewGuid().ToString("N");
        var adminKey = Atelier.Core.Security.Secrets.Issue(Atelier.Core.Security.Secrets.PlatformKeyPrefix);
        await using var db = await TestDatabase.CreateAsync();
        await using var server = AtelierProcess.Start(db.Folder,
            "serve", "--Atelier:Server:Urls=http://127.0.0.1:0", $"--Atelier:Server:DataDirectory={Path.Combine(db.Folder, "data")}",
            $"--Atelier:Database:Provider={db.Provider}", $"--Atelier:Database:ConnectionString={db.ConnectionString}",
            $"--Atelier:Auth:BootstrapAdminKey={adminKey}", "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
            "--Atelier:Telemetry:Prometheus=true", $"--Atelier:Telemetry:MetricsToken={scrapeToken}", "--Logging:LogLevel:Default=Warning");
        using var http = new HttpClient { BaseAddress = await server.ListeningAddressAsync(TimeSpan.FromSeconds(120)), Timeout = TimeSpan.FromSeconds(60) };
        var admin = new ApiClient(http).With(adminKey, "op-metrics");
        var world = await Scenario.NewTenantAsync(admin);

        Assert.Equal(ErrCodes.MetricsCredential, (await new ApiClient(http).GetAsync("/metrics")).Error(ErrorCatalog.p_common_apitokenrequired, 401)
            .GetProperty("errCode").GetString());
        // A tenant's token is a real credential, but not one that may read the platform's metrics.
        Assert.Equal(ErrCodes.MetricsCredential, (await new ApiClient(http).With(world.AdminToken).GetAsync("/metrics")).Error(ErrorCatalog.p_common_apitokenrequired, 401)
            .GetProperty("errCode").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await ScrapeAsync(http, scrapeToken + "x")).Status);
        Assert.Equal(HttpStatusCode.OK, (await ScrapeAsync(http, adminKey)).Status);

        var workerKey = (await admin.PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        await using (AtelierProcess.Start(db.Folder, "worker", "--server", http.BaseAddress!.ToString(), "--token", workerKey, "--engine", "noop", "--id", "metrics-worker"))
        {
            var image = await new ApiClient(http).With(world.AppToken).PostAsync("/sdapi/v1/txt2img", new { prompt = "metrics", steps = 1 });
            Assert.Equal(HttpStatusCode.OK, image.Status);
        }

        var text = await Eventually.ValueAsync(async () => await ScrapeAsync(http, scrapeToken),
            s => s.Status == HttpStatusCode.OK && s.Text.Contains("atelier_job_duration_seconds_bucket", StringComparison.Ordinal),
            "the job's duration in the scrape");
        Assert.Contains("engine=\"noop\"", text.Text, StringComparison.Ordinal);
        Assert.Contains("atelier_lease_wait_seconds_count", text.Text, StringComparison.Ordinal);
        Assert.Contains("atelier_sessions_active", text.Text, StringComparison.Ordinal);
        Assert.Contains("http_server_request_duration_seconds", text.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await new ApiClient(http).GetAsync("/readyz")).Status);

        // A function and a computing unit, each with one ready instance (a child process of the server), in the instance gauges.
        var tenantAdmin = new ApiClient(http).With(world.AdminToken, "op-tenant");
        (await tenantAdmin.PostAsync("/api/v1/services", new { name = "metered" })).Created();
        var function = (await tenantAdmin.PostAsync("/api/v1/services/metered/functions", FunctionInstance.Open("hello"))).Created().GetProperty("id").GetString()!;
        var pool = (await admin.PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "metered", tenantIds = new[] { world.TenantId },
            regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity = 1, slotsPerReplica = 1 } } } },
        })).Created().GetProperty("id").GetString()!;
        var template = (await tenantAdmin.PostAsync("/api/v1/scale-templates", new { name = "fixed", minReplicas = 0, maxReplicas = 1 })).Created().GetProperty("id").GetString()!;
        var agent = (await tenantAdmin.PostAsync("/api/v1/agents", new { name = "metered" })).Created().GetProperty("id").GetString()!;
        var version = (await tenantAdmin.PostAsync($"/api/v1/agents/{agent}/versions", new { versionName = "v1", image = "atelier/atelier:test", engine = "noop", autoScaleTemplateId = template }))
            .Created().GetProperty("id").GetString()!;
        var unit = (await tenantAdmin.PostAsync($"/api/v1/agents/{agent}/units", new
        {
            agentVersionId = version, computingPoolId = pool, region = "local", instanceType = "cpu", replicas = 1, autoscale = false,
        })).Created().GetProperty("id").GetString()!;

        async Task<string> ScrapeTextAsync() => (await ScrapeAsync(http, scrapeToken)).Text;
        await Eventually.ValueAsync(ScrapeTextAsync,
            t => SeriesValue(t, "atelier_function_instances", $"function=\"{function}\"", $"tenant=\"{world.TenantId}\"", "region=\"local\"") == "1"
                 && SeriesValue(t, "atelier_unit_instances", $"unit=\"{unit}\"", $"agent=\"{agent}\"", "region=\"local\"") == "1",
            "one ready instance of the function and one of the unit in the gauges");

        // Gone with what they measured.
        Assert.Equal(HttpStatusCode.NoContent, (await tenantAdmin.DeleteAsync("/api/v1/services/metered/functions/hello")).Status);
        Assert.Equal(HttpStatusCode.NoContent, (await tenantAdmin.DeleteAsync($"/api/v1/agents/{agent}/units/{unit}")).Status);
        await Eventually.ValueAsync(ScrapeTextAsync,
            t => SeriesValue(t, "atelier_function_instances", $"function=\"{function}\"") is null && SeriesValue(t, "atelier_unit_instances", $"unit=\"{unit}\"") is null,
            "the deleted function and unit gone from the gauges");
    }

    /// <summary>
    /// Model loads are counted from the lease, by the worker's hot request info: a lease whose model none of the
    /// worker's slots has loaded is a load, one whose model a slot has (this slot or another) is not.
    /// </summary>
    [Fact]
    public async Task ModelLoads_CountLeasesWhoseModelNoSlotOfTheWorkerHasLoaded_ByEngine()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Telemetry:Prometheus"] = "true" });
        var world = await Scenario.NewTenantAsync(host);
        var (a, b) = await Library.TwoModelsAsync(host, world);
        var engine = "probe-" + Guid.NewGuid().ToString("N")[..8];
        var key = (await host.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        var worker = host.Client.With(key);
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "loader", engine, slots = 2 })).Ok();

        async Task<string?> RunAsync(string model, string?[] hot, int slot)
        {
            await Worker.WorkerProtocolTests.SubmitAsync(host, world, input: new { prompt = "loads", override_settings = new { sd_model_checkpoint = model } });
            var leased = (await WorkerProtocol.LeaseAsync(worker, "loader", slot, hot)).Ok();
            var id = leased.GetProperty("id").GetString()!;
            (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();
            return leased.GetProperty("model").GetProperty("versionId").GetString();
        }

        var versionA = await RunAsync(a, [null, null], 0);                  // nothing loaded: a load
        await RunAsync(a, [versionA, null], 0);                              // loaded in this slot: none
        await RunAsync(a, [versionA, null], 1);                              // loaded in the other slot: none
        var versionB = await RunAsync(b, [versionA, null], 1);              // B nowhere: a load
        await RunAsync(b, [versionA, versionB], 0);                          // B in slot 1: none

        var scraped = await ScrapeAsync(host.Client.Http, host.AdminKey);
        Assert.Equal("2", SeriesValue(scraped.Text, "atelier_model_loads_total", $"engine=\"{engine}\""));
    }
}
