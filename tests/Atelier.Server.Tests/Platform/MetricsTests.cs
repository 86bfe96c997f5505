using System.Net;
using System.Net.Http.Headers;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Platform;

/// <summary><c>/metrics</c> (Prometheus text, off by default and guarded when on) and the health endpoints on the framework's checks.</summary>
public class MetricsTests
{
    private static async Task<(HttpStatusCode Status, string Text)> ScrapeAsync(TestHost host, string? bearer)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        if (bearer is not null)
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var resp = await host.Client.Http.SendAsync(req);
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

    [Fact]
    public async Task Metrics_On_NeedsTheAdminKeyOrTheScrapeToken_AndShowsOurInstruments()
    {
        var scrapeToken = "scrape-" + Guid.NewGuid().ToString("N");
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Telemetry:Prometheus"] = "true", ["Atelier:Telemetry:MetricsToken"] = scrapeToken,
        });
        var world = await Scenario.NewTenantAsync(host);

        Assert.Equal(ErrCodes.MetricsCredential, (await host.Client.GetAsync("/metrics")).Error(ErrorCatalog.p_common_apitokenrequired, 401)
            .GetProperty("errCode").GetString());
        // A tenant's token is a real credential, but not one that may read the platform's metrics.
        Assert.Equal(ErrCodes.MetricsCredential, (await world.AdminOf(host).GetAsync("/metrics")).Error(ErrorCatalog.p_common_apitokenrequired, 401)
            .GetProperty("errCode").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await ScrapeAsync(host, scrapeToken + "x")).Status);
        Assert.Equal(HttpStatusCode.OK, (await ScrapeAsync(host, host.AdminKey)).Status);

        await using (await InProcessWorker.StartAsync(host, "noop"))
        {
            var image = await world.AppOf(host).PostAsync("/sdapi/v1/txt2img", new { prompt = "metrics", steps = 1 });
            Assert.Equal(HttpStatusCode.OK, image.Status);
        }

        var text = await Eventually.ValueAsync(async () => await ScrapeAsync(host, scrapeToken),
            s => s.Status == HttpStatusCode.OK && s.Text.Contains("atelier_job_duration_seconds_bucket", StringComparison.Ordinal),
            "the job's duration in the scrape");
        Assert.Contains("engine=\"noop\"", text.Text, StringComparison.Ordinal);
        Assert.Contains("atelier_lease_wait_seconds_count", text.Text, StringComparison.Ordinal);
        Assert.Contains("atelier_sessions_active", text.Text, StringComparison.Ordinal);
        Assert.Contains("http_server_request_duration_seconds", text.Text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/readyz")).Status);
    }
}
