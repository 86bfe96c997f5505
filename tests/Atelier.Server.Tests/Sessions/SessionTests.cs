using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Core.Sessions;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Sessions;

internal static class Sessions
{
    public static async Task<(string Id, string Credential, JsonElement Data)> OpenAsync(TestHost host, ApiClient app, int seconds = 3600,
        string? role = null, string mode = "interactive", string? resourceConfigId = null)
    {
        var expiredAt = host.Clock!.GetUtcNow().AddSeconds(seconds);
        var data = (await app.PostAsync("/api/v1/sessions", new { endUserId = "user-42", role, mode, resourceConfigId, expiredAt })).Created();
        return (data.GetProperty("session").GetProperty("id").GetString()!, data.GetProperty("credential").GetString()!, data);
    }

    public static async Task<long> TotalAsync(ApiClient app) =>
        (await app.GetAsync("/api/v1/tokens/current")).Ok().GetProperty("totalEndedSessionSeconds").GetInt64();

    public static Task<ApiResult> CheckAsync(TestHost host, string credential, string? mode = "interactive") =>
        host.Client.PostAsync("/api/v1/sessions/check", new { credential, mode });
}

public class SessionTests(FakeClockHost shared) : IClassFixture<FakeClockHost>
{
    private TestHost Host => shared.Host;

    [Fact]
    public async Task Create_ReturnsCredentialOnceAndStudioUrl()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var (id, credential, data) = await Sessions.OpenAsync(Host, app);
        Assert.StartsWith("ses_", id, StringComparison.Ordinal);
        Assert.True(Secrets.IsWellFormed(credential, Secrets.SessionPrefix));
        Assert.EndsWith($"/studio/{id}#credential={credential}", data.GetProperty("studioUrl").GetString(), StringComparison.Ordinal);
        var session = data.GetProperty("session");
        Assert.Equal("default", session.GetProperty("roleName").GetString());
        Assert.Equal("active", session.GetProperty("state").GetString());

        var get = await app.GetAsync($"/api/v1/sessions/{id}");
        get.Ok();
        var list = await app.GetAsync("/api/v1/sessions?state=active");
        Assert.Equal(1, list.Ok().GetProperty("total").GetInt32());
        Assert.DoesNotContain(credential, get.Text + list.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_ModeServedAndNot()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var (_, interactive, _) = await Sessions.OpenAsync(Host, world.AppOf(Host));
        var ok = (await Sessions.CheckAsync(Host, interactive)).Ok();
        Assert.Equal(3600, ok.GetProperty("remainingSeconds").GetInt64());
        (await Sessions.CheckAsync(Host, interactive, "api")).Error(ErrorCatalog.b_session_sessionmodenotsupport, 400);
        (await Sessions.CheckAsync(Host, interactive, "exclusive")).Error(ErrorCatalog.b_session_sessionmodenotsupport, 400);

        var (_, api, _) = await Sessions.OpenAsync(Host, world.AppOf(Host), mode: "api");
        (await Sessions.CheckAsync(Host, api, "api")).Ok();
        var json = (await Sessions.CheckAsync(Host, api, "interactive")).Error(ErrorCatalog.b_session_sessionmodenotsupport, 400);
        Assert.Equal("mode_mismatch", json.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task Check_UnknownOrJunkCredential_AnswersSessionNotFound()
    {
        (await Sessions.CheckAsync(Host, "ats_nonsense")).Error(ErrorCatalog.p_session_sessionnotfound, 401);
        (await Sessions.CheckAsync(Host, Secrets.Issue(Secrets.SessionPrefix))).Error(ErrorCatalog.p_session_sessionnotfound, 401);
        (await Host.Client.With(Secrets.Issue(Secrets.SessionPrefix)).GetAsync("/api/v1/session")).Error(ErrorCatalog.p_session_sessionnotfound, 401);
    }

    [Fact]
    public async Task Create_ExpiredAtNotLaterThanNow_AnswersExpiredAtTooEarly()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var now = Host.Clock!.GetUtcNow();
        (await app.PostAsync("/api/v1/sessions", new { endUserId = "u", expiredAt = now })).Error(ErrorCatalog.p_session_expiredattooearly, 400);
        (await app.PostAsync("/api/v1/sessions", new { endUserId = "u", expiredAt = now.AddMinutes(-5) })).Error(ErrorCatalog.p_session_expiredattooearly, 400);
        Assert.Equal(0, (await app.GetAsync("/api/v1/sessions")).Ok().GetProperty("total").GetInt32());
        // Without expiredAt the tenant's default session length applies (3600 s from the defaults file).
        var created = (await app.PostAsync("/api/v1/sessions", new { endUserId = "u" })).Created();
        Assert.Equal(now.AddSeconds(3600).UtcDateTime, created.GetProperty("session").GetProperty("expiredAt").GetDateTime());
    }

    [Fact]
    public async Task Create_RoleOfTheTenantOrNot()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var (_, _, premium) = await Sessions.OpenAsync(Host, app, role: "premium");
        Assert.Equal("premium", premium.GetProperty("session").GetProperty("roleName").GetString());
        (await app.PostAsync("/api/v1/sessions", new { endUserId = "u", role = "ghost" }))
            .Error(ErrorCatalog.b_session_roleidnotvalid, 400, new Dictionary<string, string> { ["Role"] = "ghost" });
        var other = await Scenario.NewTenantAsync(Host);
        var otherRole = (await other.AdminOf(Host).GetAsync("/api/v1/roles")).Ok().GetProperty("items")[0].GetProperty("id").GetString()!;
        (await app.PostAsync("/api/v1/sessions", new { endUserId = "u", role = otherRole }))
            .Error(ErrorCatalog.b_session_roleidnotvalid, 400, new Dictionary<string, string> { ["Role"] = otherRole });
    }

    [Fact]
    public async Task ResourceConfigs_CrudAndIdNeverChanges()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var rc = (await admin.PostAsync("/api/v1/resource-configs", new { name = "gpu-large", engine = "builtin", instanceType = "gpu.a10", instanceCount = 2 })).Created();
        var id = rc.GetProperty("id").GetString()!;
        var updated = (await admin.PutAsync($"/api/v1/resource-configs/{id}", new { id, name = "gpu-large", engine = "a1111", instanceType = "gpu.a100", instanceCount = 4 })).Ok();
        Assert.Equal("a1111", updated.GetProperty("engine").GetString());
        (await admin.PutAsync($"/api/v1/resource-configs/{id}", new { id = "rc_other", name = "x", engine = "builtin", instanceType = "t" }))
            .Error(ErrorCatalog.p_resource_resourceconfigidnotsupportmodify, 400);
        (await admin.PostAsync("/api/v1/resource-configs", new { id = "rc_mine", name = "y", engine = "builtin", instanceType = "t" }))
            .Error(ErrorCatalog.p_resource_resourceconfigidnotsupportmodify, 400);
        Assert.Equal(4, (await admin.GetAsync($"/api/v1/resource-configs/{id}")).Ok().GetProperty("instanceCount").GetInt32());
        (await admin.PostAsync("/api/v1/resource-configs", new { name = "z", engine = "tensorrt", instanceType = "t" })).Error(ErrorCatalog.p_common_inputinvalid, 400);

        var (_, _, session) = await Sessions.OpenAsync(Host, world.AppOf(Host), resourceConfigId: id);
        Assert.Equal(id, session.GetProperty("session").GetProperty("resourceConfigId").GetString());
        (await world.AppOf(Host).PostAsync("/api/v1/sessions", new { endUserId = "u", resourceConfigId = "rc_ghost" }))
            .Error(ErrorCatalog.b_session_resourceconfigidnotvalid, 400);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/resource-configs/{id}")).Status);
        (await admin.GetAsync($"/api/v1/resource-configs/{id}")).Error(ErrorCatalog.b_session_resourceconfigidnotvalid, 404);
    }

    [Fact]
    public async Task Refresh_ByItsTokenOnly()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var (id, credential, _) = await Sessions.OpenAsync(Host, app, seconds: 600);
        var later = Host.Clock!.GetUtcNow().AddSeconds(7200);
        var refreshed = (await app.PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = later })).Ok();
        Assert.Equal(later.UtcDateTime, refreshed.GetProperty("expiredAt").GetDateTime());
        Assert.Equal(7200, (await Sessions.CheckAsync(Host, credential)).Ok().GetProperty("remainingSeconds").GetInt64());

        var secondToken = (await world.AdminOf(Host).PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { scopes = new[] { "app" } })).Created()
            .GetProperty("secret").GetString()!;
        (await Host.Client.With(secondToken).PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = later }))
            .Error(ErrorCatalog.p_session_refreshfailedsessionnotfound, 404);
        (await app.PostAsync("/api/v1/sessions/ses_ghost/refresh", new { expiredAt = later }))
            .Error(ErrorCatalog.p_session_refreshfailedsessionnotfound, 404);
        (await app.PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = Host.Clock.GetUtcNow().AddSeconds(-1) }))
            .Error(ErrorCatalog.p_session_expiredattooearly, 400);
    }

    [Fact]
    public async Task Get_UnknownOrOthers_AnswersSessionNotFound()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AppOf(Host).GetAsync("/api/v1/sessions/ses_ghost")).Error(ErrorCatalog.p_session_sessionnotfound, 404);
        (await world.AppOf(Host).PostAsync("/api/v1/sessions/ses_ghost/end")).Error(ErrorCatalog.p_session_sessionnotfound, 404);
        var (id, _, _) = await Sessions.OpenAsync(Host, world.AppOf(Host));
        var secondToken = (await world.AdminOf(Host).PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { scopes = new[] { "app" } })).Created()
            .GetProperty("secret").GetString()!;
        (await Host.Client.With(secondToken).GetAsync($"/api/v1/sessions/{id}")).Error(ErrorCatalog.p_session_sessionnotfound, 404);
        (await world.AdminOf(Host).GetAsync($"/api/v1/sessions/{id}")).Ok(); // the tenant admin sees every session
    }

    [Fact]
    public async Task End_AddsWholeSecondsToTheTokenOnce()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var before = await Sessions.TotalAsync(app);
        var (id, credential, _) = await Sessions.OpenAsync(Host, app);
        Host.Clock!.Advance(TimeSpan.FromMilliseconds(90_700));
        var ended = (await app.PostAsync($"/api/v1/sessions/{id}/end")).Ok();
        Assert.Equal("ended", ended.GetProperty("state").GetString());
        Assert.Equal(90, ended.GetProperty("durationSeconds").GetInt64());
        Assert.Equal(before + 90, await Sessions.TotalAsync(app));

        // Ending again changes nothing; the credential is dead.
        Host.Clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(90, (await app.PostAsync($"/api/v1/sessions/{id}/end")).Ok().GetProperty("durationSeconds").GetInt64());
        Assert.Equal(before + 90, await Sessions.TotalAsync(app));
        (await Sessions.CheckAsync(Host, credential)).Error(ErrorCatalog.b_session_sessionexpired, 401);
        (await Host.Client.With(credential).GetAsync("/api/v1/session")).Error(ErrorCatalog.b_session_sessionexpired, 401);
        (await app.PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = Host.Clock.GetUtcNow().AddHours(1) }))
            .Error(ErrorCatalog.b_session_sessionexpired, 401);
    }

    [Fact]
    public async Task Sweeper_EndsExpiredSessionWithinItsIntervalAndAccountsUntilExpiry()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var admin = world.AdminOf(Host);
        var before = await Sessions.TotalAsync(app);
        var (id, _, _) = await Sessions.OpenAsync(Host, app, seconds: 45);

        Host.Clock!.Advance(TimeSpan.FromSeconds(45)); // now expired; a sweep may or may not have come yet
        Host.Clock.Advance(TimeSpan.FromSeconds(30)); // one whole sweep interval later, the background sweeper has run
        var session = await WaitUntilEndedAsync(admin, id);
        Assert.Equal("expired", session.GetProperty("endReason").GetString());
        Assert.Equal(45, session.GetProperty("durationSeconds").GetInt64());
        Assert.Equal(before + 45, await Sessions.TotalAsync(app));
    }

    /// <summary>Waits (with a deadline) for the background sweeper's work to land: work is awaited, not time.</summary>
    private static Task<JsonElement> WaitUntilEndedAsync(ApiClient admin, string id) =>
        Eventually.ValueAsync(async () => (await admin.GetAsync($"/api/v1/sessions/{id}")).Ok(), s => s.GetProperty("state").GetString() == "ended",
            $"session {id} was ended by the sweeper");

    [Fact]
    public async Task Session_PastExpiryBeforeAnySweep_IsRefusedEverywhere()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Sessions:SweepIntervalSeconds"] = "3600" }, fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var app = world.AppOf(host);
        var (id, credential, _) = await Sessions.OpenAsync(host, app, seconds: 60);
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Ok();
        host.Clock!.Advance(TimeSpan.FromSeconds(60));
        (await Sessions.CheckAsync(host, credential)).Error(ErrorCatalog.b_session_sessionexpired, 401);
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Error(ErrorCatalog.b_session_sessionexpired, 401);
        (await app.PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = host.Clock.GetUtcNow().AddHours(1) }))
            .Error(ErrorCatalog.b_session_sessionexpired, 401);
        // Not swept yet: the row is still active, yet nothing accepts it. Ending it now accounts up to the expiry.
        Assert.Equal("active", (await app.GetAsync($"/api/v1/sessions/{id}")).Ok().GetProperty("state").GetString());
        host.Clock.Advance(TimeSpan.FromSeconds(40));
        var ended = (await app.PostAsync($"/api/v1/sessions/{id}/end")).Ok();
        Assert.Equal(60, ended.GetProperty("durationSeconds").GetInt64());
        Assert.Equal("expired", ended.GetProperty("endReason").GetString());
        Assert.Equal(60, await Sessions.TotalAsync(app));
    }

    [Fact]
    public async Task Concurrency_HundredEndsAndRefreshes_OneEndOneAddition()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var before = await Sessions.TotalAsync(app);
        var (id, _, _) = await Sessions.OpenAsync(Host, app);
        Host.Clock!.Advance(TimeSpan.FromSeconds(37));
        var later = Host.Clock.GetUtcNow().AddHours(2);
        var calls = Enumerable.Range(0, 100).Select(i => i % 2 == 0
            ? app.PostAsync($"/api/v1/sessions/{id}/end")
            : app.PostAsync($"/api/v1/sessions/{id}/refresh", new { expiredAt = later }));
        var results = await Task.WhenAll(calls);
        foreach (var r in results)
        {
            if (r.Status != HttpStatusCode.OK)
            {
                r.Error(ErrorCatalog.b_session_sessionexpired, 401); // a refresh that came after the end
            }
        }

        var session = (await app.GetAsync($"/api/v1/sessions/{id}")).Ok();
        Assert.Equal("ended", session.GetProperty("state").GetString());
        Assert.Equal(37, session.GetProperty("durationSeconds").GetInt64());
        Assert.Equal(before + 37, await Sessions.TotalAsync(app));
    }

    [Fact]
    public async Task Concurrency_EndsRacingTheSweeper_EachSessionAccountedOnce()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        var before = await Sessions.TotalAsync(app);
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            ids.Add((await Sessions.OpenAsync(Host, app, seconds: 10)).Id);
        }

        // Step past the expiry without crossing a sweep tick, then let the sweeper and explicit ends race.
        Host.Clock!.Advance(TimeSpan.FromSeconds(11));
        var sweeper = Host.Services.GetRequiredService<SessionSweeper>();
        var sweeps = Enumerable.Range(0, 3).Select(_ => sweeper.SweepAsync(CancellationToken.None));
        var ends = ids.Select(id => app.PostAsync($"/api/v1/sessions/{id}/end"));
        await Task.WhenAll(sweeps);
        foreach (var r in await Task.WhenAll(ends))
        {
            Assert.Equal(10, r.Ok().GetProperty("durationSeconds").GetInt64());
        }

        Assert.Equal(before + (20 * 10), await Sessions.TotalAsync(app));
    }

    [Fact]
    public async Task Cap_TokenPastItsSessionSeconds_RefusesNewSessions()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var capped = (await world.AdminOf(Host).PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { scopes = new[] { "app" }, sessionSecondsCap = 100 })).Created();
        var app = Host.Client.With(capped.GetProperty("secret").GetString()!);
        var (id, _, _) = await Sessions.OpenAsync(Host, app);
        Host.Clock!.Advance(TimeSpan.FromSeconds(100));
        (await app.PostAsync($"/api/v1/sessions/{id}/end")).Ok();
        var json = (await app.PostAsync("/api/v1/sessions", new { endUserId = "u" })).Error(ErrorCatalog.b_agent_jobpreinvokefail, 429);
        Assert.Equal("session_seconds_cap", json.GetProperty("errCode").GetString());
        // Raising the cap lets sessions open again.
        var tokenId = capped.GetProperty("token").GetProperty("id").GetString()!;
        (await world.AdminOf(Host).PatchAsync($"/api/v1/tokens/{tokenId}", new { sessionSecondsCap = 1000 })).Ok();
        (await app.PostAsync("/api/v1/sessions", new { endUserId = "u" })).Created();
    }

    [Fact]
    public async Task End_TokenGone_TheSessionEndedWithItsApp()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var doomedApp = (await admin.PostAsync("/api/v1/apps", new { name = "doomed" })).Created().GetProperty("id").GetString()!;
        var doomedToken = (await admin.PostAsync($"/api/v1/apps/{doomedApp}/tokens", new { scopes = new[] { "app" } })).Created().GetProperty("secret").GetString()!;
        var (id, credential, _) = await Sessions.OpenAsync(Host, Host.Client.With(doomedToken));
        Host.Clock!.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/apps/{doomedApp}")).Status);

        // Deleting the app ended the session (issue 12); ending it again is not an error, and its credential is dead.
        var session = (await admin.PostAsync($"/api/v1/sessions/{id}/end")).Ok();
        Assert.Equal(("ended", "app_deleted", 5L),
            (session.GetProperty("state").GetString(), session.GetProperty("endReason").GetString(), session.GetProperty("durationSeconds").GetInt64()));
        (await Sessions.CheckAsync(Host, credential)).Error(ErrorCatalog.b_session_tokennotvalid, 401);
    }

    [Fact]
    public async Task Session_OfDeactivatedTenant_IsRefused()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var (_, credential, _) = await Sessions.OpenAsync(Host, world.AppOf(Host));
        (await Host.Admin().PostAsync($"/api/v1/tenants/{world.TenantId}/deactivate")).Ok();
        (await Sessions.CheckAsync(Host, credential)).Error(ErrorCatalog.b_user_tenantnotactive, 403);
        (await Host.Client.With(credential).GetAsync("/api/v1/session")).Error(ErrorCatalog.b_user_tenantnotactive, 403);
    }
}
