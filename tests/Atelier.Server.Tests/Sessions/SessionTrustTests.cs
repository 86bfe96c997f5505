using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Core.Sessions;
using Atelier.Data;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Sessions;

/// <summary>
/// Sessions die with their token and app (issue 12, item 5), and sessions that cannot be ended never stall the sweeper
/// for anyone else.
/// </summary>
public class SessionTrustTests
{
    private static Task<TestHost> StartAsync(int sweepSeconds = 3600) =>
        TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Sessions:SweepIntervalSeconds"] = sweepSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            fakeClock: true);

    private static async Task<(string Id, string Secret)> NewAppTokenAsync(TestHost host, TenantWorld world, string appId, object? extra = null)
    {
        var issued = (await world.AdminOf(host).PostAsync($"/api/v1/apps/{appId}/tokens", extra ?? new { scopes = new[] { "app" } })).Created();
        return (issued.GetProperty("token").GetProperty("id").GetString()!, issued.GetProperty("secret").GetString()!);
    }

    private static async Task<ApiResult> SubmitAsync(ApiClient user) =>
        await user.PostAsync("/api/v1/predict/txt2img", new { prompt = "still here?", steps = 1 });

    /// <summary>Every way a session credential is used is refused, with the token named as the cause.</summary>
    private static async Task AssertRefusedAsync(TestHost host, string credential, string errCode)
    {
        var user = host.Client.With(credential);
        Assert.Equal(errCode, (await SubmitAsync(user)).Error(ErrorCatalog.b_session_tokennotvalid, 401).GetProperty("errCode").GetString());
        Assert.Equal(errCode, (await user.GetAsync("/api/v1/session")).Error(ErrorCatalog.b_session_tokennotvalid, 401).GetProperty("errCode").GetString());
        Assert.Equal(errCode, (await user.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 1 })).Error(ErrorCatalog.b_session_tokennotvalid, 401)
            .GetProperty("errCode").GetString());
        Assert.Equal(errCode, (await Sessions.CheckAsync(host, credential)).Error(ErrorCatalog.b_session_tokennotvalid, 401).GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task RevokeToken_EndsItsSessionsAtOnce_CredentialRefused_SecondsCounted()
    {
        await using var host = await StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var (tokenId, secret) = await NewAppTokenAsync(host, world, world.AppId);
        var app = host.Client.With(secret);
        var (first, credential, _) = await Sessions.OpenAsync(host, app);
        var (second, _, _) = await Sessions.OpenAsync(host, app);
        var (other, otherCredential, _) = await Sessions.OpenAsync(host, world.AppOf(host)); // another token's session
        (await SubmitAsync(host.Client.With(credential))).Ok(HttpStatusCode.Accepted);

        host.Clock!.Advance(TimeSpan.FromSeconds(90));
        var revoked = (await admin.DeleteAsync($"/api/v1/tokens/{tokenId}")).Ok();
        Assert.Equal(180, revoked.GetProperty("totalEndedSessionSeconds").GetInt64());

        await AssertRefusedAsync(host, credential, "token_revoked");
        foreach (var id in new[] { first, second })
        {
            var ended = (await admin.GetAsync($"/api/v1/sessions/{id}")).Ok();
            Assert.Equal("ended", ended.GetProperty("state").GetString());
            Assert.Equal("token_revoked", ended.GetProperty("endReason").GetString());
            Assert.Equal(90, ended.GetProperty("durationSeconds").GetInt64());
        }

        Assert.Equal(180, (await admin.GetAsync($"/api/v1/tokens/{tokenId}")).Ok().GetProperty("totalEndedSessionSeconds").GetInt64());
        // The other token's session is untouched.
        Assert.Equal("active", (await admin.GetAsync($"/api/v1/sessions/{other}")).Ok().GetProperty("state").GetString());
        (await host.Client.With(otherCredential).GetAsync("/api/v1/session")).Ok();
    }

    [Fact]
    public async Task DisableToken_EndsItsSessions_EnablingDoesNotBringThemBack()
    {
        await using var host = await StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var (tokenId, secret) = await NewAppTokenAsync(host, world, world.AppId);
        var (id, credential, _) = await Sessions.OpenAsync(host, host.Client.With(secret));
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Ok();

        host.Clock!.Advance(TimeSpan.FromSeconds(42));
        Assert.Equal(42, (await admin.PostAsync($"/api/v1/tokens/{tokenId}/disable")).Ok().GetProperty("totalEndedSessionSeconds").GetInt64());
        await AssertRefusedAsync(host, credential, "token_disabled");
        var ended = (await admin.GetAsync($"/api/v1/sessions/{id}")).Ok();
        Assert.Equal(("ended", "token_disabled", 42L),
            (ended.GetProperty("state").GetString(), ended.GetProperty("endReason").GetString(), ended.GetProperty("durationSeconds").GetInt64()));

        (await admin.PostAsync($"/api/v1/tokens/{tokenId}/enable")).Ok();
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Error(ErrorCatalog.b_session_sessionexpired, 401);
        Assert.Equal(42, (await admin.GetAsync($"/api/v1/tokens/{tokenId}")).Ok().GetProperty("totalEndedSessionSeconds").GetInt64());
    }

    [Fact]
    public async Task DeleteApp_EndsItsSessions_CredentialRefused()
    {
        await using var host = await StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var (appId, app) = await Scenario.NewAppAsync(host, world, "doomed");
        var (id, credential, _) = await Sessions.OpenAsync(host, app);
        (await SubmitAsync(host.Client.With(credential))).Ok(HttpStatusCode.Accepted);

        host.Clock!.Advance(TimeSpan.FromSeconds(77));
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/apps/{appId}")).Status);
        await AssertRefusedAsync(host, credential, "token_missing");
        // Its token is gone with the app; the session keeps its seconds (counted on the token before it went).
        var ended = (await admin.GetAsync($"/api/v1/sessions/{id}")).Ok();
        Assert.Equal(("ended", "app_deleted", 77L),
            (ended.GetProperty("state").GetString(), ended.GetProperty("endReason").GetString(), ended.GetProperty("durationSeconds").GetInt64()));
    }

    [Fact]
    public async Task ExpiredToken_ItsSessionsCredentialIsRefused()
    {
        await using var host = await StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var (_, secret) = await NewAppTokenAsync(host, world, world.AppId,
            new { scopes = new[] { "app" }, expiresAt = host.Clock!.GetUtcNow().AddSeconds(100) });
        var (_, credential, _) = await Sessions.OpenAsync(host, host.Client.With(secret), seconds: 3600);
        (await host.Client.With(credential).GetAsync("/api/v1/session")).Ok();
        host.Clock.Advance(TimeSpan.FromSeconds(100));
        await AssertRefusedAsync(host, credential, "token_expired");
    }

    [Fact]
    public async Task Sweeper_ThousandUnendableSessionsOfOneTenant_AnotherTenantsExpiredSessionStillEnds()
    {
        await using var host = await StartAsync(sweepSeconds: 30);
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var broken = await OpenManyAsync(host, a.AppOf(host), 1000, seconds: 60);
        var (bSession, _, _) = await Sessions.OpenAsync(host, b.AppOf(host), seconds: 120);

        // No real situation makes a session unendable any more (a missing token is ended too, see below), so the test
        // makes one with a direct database write: a trigger that refuses every addition to tenant A's token's total.
        await RefuseTotalOfAsync(host, a.AppTokenId);
        host.Clock!.Advance(TimeSpan.FromSeconds(150)); // every session has expired; a sweep comes

        var ended = await Eventually.ValueAsync(async () => (await b.AdminOf(host).GetAsync($"/api/v1/sessions/{bSession}")).Ok(),
            s => s.GetProperty("state").GetString() == "ended", "tenant B's expired session is ended by the sweeper");
        Assert.Equal(120, ended.GetProperty("durationSeconds").GetInt64());
        Assert.Equal(120, await Sessions.TotalAsync(b.AppOf(host)));

        // Tenant A's are each marked with why, shown in the API, and left alone by later sweeps.
        var aAdmin = a.AdminOf(host);
        await Eventually.UntilAsync(async () => (await ActiveAsync(aAdmin)).All(s => s.GetProperty("endError").ValueKind == JsonValueKind.String),
            "every unendable session is marked");
        var active = await ActiveAsync(aAdmin);
        Assert.Equal(broken.Count, active.Count);
        Assert.All(active, s => Assert.StartsWith("b_user_totalendedsessiontimesecsplusfailed", s.GetProperty("endError").GetString(), StringComparison.Ordinal));
        Assert.Equal(new SweepResult(0, 0), await host.Services.GetRequiredService<SessionSweeper>().SweepAsync(CancellationToken.None));

        // An explicit end says why it cannot; once the cause is gone it ends and the mark goes.
        (await aAdmin.PostAsync($"/api/v1/sessions/{broken[0]}/end")).Error(ErrorCatalog.b_user_totalendedsessiontimesecsplusfailed, 409);
        await DropRefusalAsync(host);
        var fixedSession = (await aAdmin.PostAsync($"/api/v1/sessions/{broken[0]}/end")).Ok();
        Assert.Equal(("ended", 60L), (fixedSession.GetProperty("state").GetString(), fixedSession.GetProperty("durationSeconds").GetInt64()));
        Assert.Equal(JsonValueKind.Null, fixedSession.GetProperty("endError").ValueKind);
    }

    [Fact]
    public async Task Sweeper_ThousandSessionsWhoseTokenIsGone_AreEndedAndAnotherTenantsToo()
    {
        await using var host = await StartAsync(sweepSeconds: 30);
        var a = await Scenario.NewTenantAsync(host);
        var b = await Scenario.NewTenantAsync(host);
        var (tokenId, secret) = await NewAppTokenAsync(host, a, a.AppId);
        var orphans = await OpenManyAsync(host, host.Client.With(secret), 1000, seconds: 60);
        var (bSession, _, _) = await Sessions.OpenAsync(host, b.AppOf(host), seconds: 120);

        // What deleting an app left behind before sessions were ended with it: sessions whose token row is gone. The
        // API no longer makes them, so the token row is deleted directly.
        using (var scope = host.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            Assert.Equal(1, await db.ApiTokens.IgnoreQueryFilters().Where(t => t.Id == tokenId).ExecuteDeleteAsync());
        }

        host.Clock!.Advance(TimeSpan.FromSeconds(150));
        await Eventually.UntilAsync(async () => (await b.AdminOf(host).GetAsync($"/api/v1/sessions/{bSession}")).Ok().GetProperty("state").GetString() == "ended",
            "tenant B's expired session is ended by the sweeper");
        Assert.Equal(120, await Sessions.TotalAsync(b.AppOf(host)));
        // The orphans end too, their seconds kept on the session and counted on no token.
        await Eventually.UntilAsync(async () => (await ActiveAsync(a.AdminOf(host))).Count == 0, "every orphaned session is ended");
        var orphan = (await a.AdminOf(host).GetAsync($"/api/v1/sessions/{orphans[^1]}")).Ok();
        Assert.Equal(("expired", 60L), (orphan.GetProperty("endReason").GetString(), orphan.GetProperty("durationSeconds").GetInt64()));
        Assert.Equal(JsonValueKind.Null, orphan.GetProperty("endError").ValueKind);
    }

    /// <summary>Opens <paramref name="count"/> sessions through the API, a few at a time.</summary>
    private static async Task<List<string>> OpenManyAsync(TestHost host, ApiClient app, int count, int seconds)
    {
        var ids = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, _) =>
            ids.Add((await Sessions.OpenAsync(host, app, seconds)).Id));
        return [.. ids];
    }

    /// <summary>Every active session of the admin's tenant (the list pages at 100).</summary>
    private static async Task<List<JsonElement>> ActiveAsync(ApiClient admin)
    {
        var all = new List<JsonElement>();
        for (var page = 1; ; page++)
        {
            var data = (await admin.GetAsync($"/api/v1/sessions?state=active&pageSize=100&pageNumber={page}")).Ok();
            all.AddRange(data.GetProperty("items").EnumerateArray().Select(s => s.Clone()));
            if (all.Count >= data.GetProperty("total").GetInt64() || data.GetProperty("items").GetArrayLength() == 0)
            {
                return all;
            }
        }
    }

    private static async Task RefuseTotalOfAsync(TestHost host, string tokenId)
    {
        using var scope = host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        if (host.Database.Provider == "postgres")
        {
            await db.Database.ExecuteSqlRawAsync(
                "CREATE FUNCTION test_refuse_total() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$");
            var trigger = "CREATE TRIGGER test_refuse_total BEFORE UPDATE OF \"TotalEndedSessionSeconds\" ON api_tokens FOR EACH ROW WHEN (OLD.\"Id\" = '"
                          + tokenId + "') EXECUTE FUNCTION test_refuse_total()";
            await db.Database.ExecuteSqlRawAsync(trigger);
        }
        else
        {
            var trigger = "CREATE TRIGGER test_refuse_total BEFORE UPDATE OF \"TotalEndedSessionSeconds\" ON api_tokens WHEN OLD.\"Id\" = '"
                          + tokenId + "' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
            await db.Database.ExecuteSqlRawAsync(trigger);
        }
    }

    private static async Task DropRefusalAsync(TestHost host)
    {
        using var scope = host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        await db.Database.ExecuteSqlRawAsync(host.Database.Provider == "postgres" ? "DROP TRIGGER test_refuse_total ON api_tokens" : "DROP TRIGGER test_refuse_total");
    }
}
