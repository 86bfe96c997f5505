using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Usage;

/// <summary>Usage indicators and charts over HTTP: real jobs (a real worker with the no-op engine), rolled up by the leader, read back.</summary>
public class UsageTests
{
    // The fake clock starts at 2026-11-27 08:00:00 and only moves when a test moves it, so every job ends in minute 08:00.
    private const string Day = "2026-11-27T00:00:00Z";
    private const string From = "2026-11-27T08:00:00Z";
    private const string To = "2026-11-27T08:05:00Z";

    // Long periods for the other timers: moving the fake clock runs every periodic timer once per period.
    private static Task<TestHost> StartAsync(bool fakeClock) => TestHost.StartAsync(TestHost.LongTimerPeriods(new Dictionary<string, string>
    {
        ["Atelier:Usage:RollIntervalSeconds"] = "1", ["Atelier:Usage:SettleSeconds"] = "0",
        ["Atelier:Webhooks:AllowPrivateNetworks"] = "true", ["Atelier:Webhooks:PollMilliseconds"] = "100", ["Atelier:Images:RetentionSweepMinutes"] = "600",
    }), fakeClock);

    private static async Task RunTaskAsync(ApiClient client)
    {
        var task = (await client.PostAsync("/api/v1/predict/txt2img", new { prompt = "usage", steps = 2, seed = 3 })).Ok(HttpStatusCode.Accepted)
            .GetProperty("taskId").GetString()!;
        var state = await Eventually.ValueAsync(async () => (await client.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("state").GetString(),
            st => st is "succeeded" or "failed", $"task {task} finished");
        Assert.Equal("succeeded", state);
    }

    private static Dictionary<string, double> Totals(JsonElement data) =>
        data.GetProperty("series").EnumerateArray().ToDictionary(s => s.GetProperty("key").GetString()!,
            s => s.GetProperty("points").EnumerateArray().Sum(p => p.GetProperty("value").GetDouble()));

    private static async Task<Dictionary<string, double>> QueryAsync(ApiClient client, string query) =>
        Totals((await client.GetAsync($"/api/v1/usage/query?{query}")).Ok());

    /// <summary>The query's totals, or null while the roller has not built the range yet (<c>rollup_not_built</c>).</summary>
    private static async Task<Dictionary<string, double>?> RolledUpAsync(ApiClient client, string query)
    {
        var r = await client.GetAsync($"/api/v1/usage/query?{query}");
        return r.Status == HttpStatusCode.BadRequest && r.Json.GetProperty("errCode").GetString() == ErrCodes.RollupNotBuilt ? null : Totals(r.Ok());
    }

    [Fact]
    public async Task Query_JobsOfRealRuns_CountedPerStateAndApp_IsolatedByTenantAndApp_StepsAgree()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var host = await StartAsync(fakeClock: true);
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var (app2, app2Client) = await Scenario.NewAppAsync(host, a, "second");
        // A job canceled while queued (no worker yet): state canceled, app 2, never ran; its webhook is delivered once.
        var queued = (await app2Client.PostAsync("/api/v1/agents/default/jobs", new
        {
            input = new { prompt = "never" }, webhook = receiver.Url("/usage"), webhookEvents = new[] { "canceled" },
        })).Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!;
        (await app2Client.PostAsync($"/api/v1/agents/default/jobs/{queued}/cancel")).Ok();
        await Eventually.UntilAsync(async () => (await a.AdminOf(host).GetAsync($"/api/v1/webhook-deliveries?jobId={queued}")).Ok().GetProperty("items")
            is { } items && items.GetArrayLength() == 1 && items[0].GetProperty("state").GetString() == "delivered", "the canceled job's webhook delivered");
        await using (await InProcessWorker.StartAsync(host, "noop"))
        {
            await RunTaskAsync(a.AppOf(host));
            await RunTaskAsync(a.AppOf(host));
            await RunTaskAsync(app2Client);
        }

        // A session of 30 seconds, ended within the minute.
        var session = (await a.AppOf(host).PostAsync("/api/v1/sessions", new { endUserId = "u-usage" })).Created().GetProperty("session").GetProperty("id").GetString()!;
        host.Clock!.Advance(TimeSpan.FromSeconds(30));
        (await a.AppOf(host).PostAsync($"/api/v1/sessions/{session}/end")).Ok();

        // The minute 08:00 ends; the leader's roller (every second of the fake clock) rolls it.
        host.Clock.Advance(TimeSpan.FromMinutes(2));
        var admin = a.AdminOf(host);
        var byState = (await Eventually.ValueAsync(() => RolledUpAsync(admin, $"indicator=jobs&by=state&step=minute&from={From}&to={To}"),
            t => t is not null && t.Values.Sum() >= 4, "the jobs rolled up"))!;
        Assert.Equal(new Dictionary<string, double> { ["succeeded"] = 3, ["canceled"] = 1 }, byState);
        var byApp = await QueryAsync(admin, $"indicator=jobs&by=app&step=minute&from={From}&to={To}");
        Assert.Equal(new Dictionary<string, double> { [a.AppId] = 2, [app2] = 2 }, byApp);
        Assert.Equal(3, (await QueryAsync(admin, $"indicator=images&from={From}&to={To}&step=minute"))["total"]);
        Assert.Equal(new Dictionary<string, double> { ["delivered"] = 1 }, await QueryAsync(admin, $"indicator=webhook_deliveries&by=outcome&from={From}&to={To}&step=minute"));
        Assert.Equal(new Dictionary<string, double> { [a.AppId] = 30 }, await QueryAsync(admin, $"indicator=session_seconds&by=app&from={From}&to={To}&step=minute"));
        Assert.Equal(["noop"], (await QueryAsync(admin, $"indicator=queue_wait&by=engine&from={From}&to={To}&step=minute")).Keys);
        Assert.Equal(["noop"], (await QueryAsync(admin, $"indicator=compute_seconds&by=engine&from={From}&to={To}&step=minute")).Keys);
        Assert.Equal(["p50", "p90", "p99"], (await QueryAsync(admin, $"indicator=run_time&from={From}&to={To}&step=minute")).Keys);

        // Hour and day steps are the minutes summed; a step with no data is 0 (a continuous axis).
        var minutes = (await admin.GetAsync($"/api/v1/usage/query?indicator=jobs&step=minute&from={From}&to={To}")).Ok();
        Assert.Equal(5, minutes.GetProperty("series")[0].GetProperty("points").GetArrayLength());
        Assert.Equal([4.0, 0, 0, 0, 0], minutes.GetProperty("series")[0].GetProperty("points").EnumerateArray().Select(p => p.GetProperty("value").GetDouble()));
        var hours = (await admin.GetAsync($"/api/v1/usage/query?indicator=jobs&step=hour&from={Day}&to=2026-11-28T00:00:00Z")).Ok();
        var hourPoints = hours.GetProperty("series")[0].GetProperty("points").EnumerateArray().ToList();
        Assert.Equal(24, hourPoints.Count);
        Assert.Equal(4, hourPoints[8].GetProperty("value").GetDouble());
        Assert.Equal(4, hourPoints.Sum(p => p.GetProperty("value").GetDouble()));
        Assert.Equal(4, (await QueryAsync(admin, $"indicator=jobs&step=day&from={Day}&to=2026-11-28T00:00:00Z"))["total"]);

        // An app token sees its own app only, and may not name another.
        Assert.Equal(new Dictionary<string, double> { ["succeeded"] = 1, ["canceled"] = 1 },
            await QueryAsync(app2Client, $"indicator=jobs&by=state&step=minute&from={From}&to={To}"));
        Assert.Equal(2, (await QueryAsync(a.AppOf(host), $"indicator=jobs&step=minute&from={From}&to={To}"))["total"]);
        (await app2Client.GetAsync($"/api/v1/usage/query?indicator=jobs&appId={a.AppId}&from={From}&to={To}")).Error(ErrorCatalog.p_token_invalidappid);

        // Tenant B sees none of A's usage, and may not name A.
        Assert.Equal(0, (await QueryAsync(b.AdminOf(host), $"indicator=jobs&step=minute&from={From}&to={To}"))["total"]);
        Assert.Empty(await QueryAsync(b.AdminOf(host), $"indicator=jobs&by=state&step=minute&from={From}&to={To}"));
        Assert.False((await b.AdminOf(host).GetAsync($"/api/v1/usage/query?indicator=jobs&tenantId={a.TenantId}&from={From}&to={To}")).Status == HttpStatusCode.OK);

        // The platform admin: the tenant it names, or every tenant.
        Assert.Equal(4, (await QueryAsync(host.Admin(), $"indicator=jobs&tenantId={a.TenantId}&step=minute&from={From}&to={To}"))["total"]);
        Assert.Equal(0, (await QueryAsync(host.Admin(), $"indicator=jobs&tenantId={b.TenantId}&step=minute&from={From}&to={To}"))["total"]);
        Assert.Equal(4, (await QueryAsync(host.Admin(), $"indicator=jobs&step=minute&from={From}&to={To}"))["total"]);

        // Charts: the built-in ones, one drawn, and a preview.
        var charts = (await admin.GetAsync("/api/v1/usage/charts")).Ok();
        Assert.Equal(["line", "bar", "stacked", "table"], charts.GetProperty("types").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("jobs-by-state", charts.GetProperty("items").EnumerateArray().Select(c => c.GetProperty("id").GetString()));
        var chart = (await admin.GetAsync($"/api/v1/usage/charts/jobs-by-state?from={From}&to={To}&step=minute")).Ok();
        Assert.Equal("stacked", chart.GetProperty("chart").GetProperty("type").GetString());
        Assert.Equal(3, Totals(chart.GetProperty("data"))["succeeded"]);
        var preview = (await admin.PostAsync("/api/v1/usage/charts/preview", new { type = "bar", indicator = "jobs", by = "app", step = "minute", from = From, to = To })).Ok();
        Assert.Equal(2, Totals(preview.GetProperty("data"))[app2]);
    }

    [Fact]
    public async Task Query_WhatTheStoreCannotAnswer_IsRefusedWithItsCode()
    {
        await using var host = await StartAsync(fakeClock: false);
        var a = await Scenario.NewTenantAsync(host);
        var admin = a.AdminOf(host);
        var now = DateTime.UtcNow;
        string At(DateTime t) => t.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

        (await admin.GetAsync("/api/v1/usage/query?indicator=gpu_dreams")).Error(ErrorCatalog.b_query_indicatortypenotexist);
        Assert.Contains("jobs", (await admin.GetAsync("/api/v1/usage/indicators")).Ok().GetProperty("items").EnumerateArray().Select(i => i.GetProperty("name").GetString()));

        async Task Refused(string query, string errCode) =>
            Assert.Equal(errCode, (await admin.GetAsync($"/api/v1/usage/query?{query}")).Error(ErrorCatalog.b_query_indicatorerror).GetProperty("errCode").GetString());
        await Refused($"indicator=jobs&from={At(now)}&to={At(now.AddDays(-1))}", ErrCodes.RangeReversed);
        await Refused($"indicator=jobs&step=minute&from={At(now.AddDays(-8))}&to={At(now)}", ErrCodes.TooManyPoints);
        await Refused($"indicator=jobs&step=day&from={At(now.AddDays(-400))}&to={At(now)}", ErrCodes.PastRetention);
        await Refused($"indicator=jobs&step=week", ErrCodes.StepUnknown);
        await Refused($"indicator=jobs&by=colour", ErrCodes.DimensionUnknown);
        // Tomorrow is not rolled up yet (the watermark is at most the last minute that ended).
        await Refused($"indicator=jobs&from={At(now.AddDays(1))}&to={At(now.AddDays(2))}", ErrCodes.RollupNotBuilt);

        (await admin.GetAsync("/api/v1/usage/charts?pageSize=101")).Error(ErrorCatalog.b_query_pagesizeexceedlimit);
        (await admin.PostAsync("/api/v1/usage/charts/preview", new { type = "pie", indicator = "jobs" })).Error(ErrorCatalog.b_query_charttypenotexist);
        (await admin.PostAsync("/api/v1/usage/charts/preview", new { type = "line", indicator = "nope" })).Error(ErrorCatalog.b_query_indicatortypenotexist);
        Assert.Equal(ErrCodes.ChartNotFound, (await admin.GetAsync("/api/v1/usage/charts/no-such-chart")).Error(ErrorCatalog.b_query_charttypenotexist, 404)
            .GetProperty("errCode").GetString());
        (await admin.GetAsync("/api/v1/usage/query?indicator=jobs&from=yesterday")).Error(ErrorCatalog.p_common_inputinvalid);
        // A credential is needed.
        Assert.Equal(HttpStatusCode.Unauthorized, (await host.Client.GetAsync("/api/v1/usage/indicators")).Status);
    }
}
