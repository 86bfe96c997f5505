using System.Net;
using System.Net.Http.Headers;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Platform;

/// <summary><c>/metrics</c> (Prometheus text, off by default and guarded when on) and the health endpoints on the framework's checks.</summary>
public class MetricsTests
{
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
    }
}
