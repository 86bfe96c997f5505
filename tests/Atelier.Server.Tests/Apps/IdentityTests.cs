using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Core.Security;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Apps;

public class IdentityTests(SharedHost shared) : IClassFixture<SharedHost>
{
    private TestHost Host => shared.Host;

    [Fact]
    public async Task Apps_CrudThroughTheApi()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var created = (await admin.PostAsync("/api/v1/apps", new { name = "mobile", description = "iOS app" })).Created();
        var id = created.GetProperty("id").GetString()!;
        Assert.StartsWith("app_", id, StringComparison.Ordinal);
        Assert.Equal("mobile", (await admin.GetAsync($"/api/v1/apps/{id}")).Ok().GetProperty("name").GetString());
        Assert.Equal("mobile2", (await admin.PatchAsync($"/api/v1/apps/{id}", new { name = "mobile2" })).Ok().GetProperty("name").GetString());
        // The read (a statement of its own on SQLite, outside EF) sees the committed change and answers every field as
        // the write did, timestamps in UTC (PostgreSQL keeps microseconds, the answer to the create had ticks).
        var read = (await admin.GetAsync($"/api/v1/apps/{id}")).Ok();
        Assert.Equal("mobile2", read.GetProperty("name").GetString());
        Assert.Equal("iOS app", read.GetProperty("description").GetString());
        Assert.True((created.GetProperty("createdAt").GetDateTime() - read.GetProperty("createdAt").GetDateTime()).Duration() < TimeSpan.FromMicroseconds(1));
        Assert.Equal(DateTimeKind.Utc, read.GetProperty("updatedAt").GetDateTime().Kind);
        Assert.True(read.GetProperty("updatedAt").GetDateTime() >= read.GetProperty("createdAt").GetDateTime());
        Assert.Equal(2, (await admin.GetAsync("/api/v1/apps")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(System.Net.HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/apps/{id}")).Status);
        (await admin.GetAsync($"/api/v1/apps/{id}")).Error(ErrorCatalog.b_user_appnotfound, 404, new Dictionary<string, string> { ["App"] = id });
    }

    [Fact]
    public async Task App_Unknown_AnswersAppNotFoundNamingIt()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AdminOf(Host).PostAsync("/api/v1/apps/app_nope/tokens", new { name = "t" }))
            .Error(ErrorCatalog.b_user_appnotfound, 404, new Dictionary<string, string> { ["App"] = "app_nope" });
        (await world.AdminOf(Host).WithHeader("Accept-Language", "en").GetAsync("/api/v1/apps/app_nope"))
            .Error(ErrorCatalog.b_user_appnotfound, 404, new Dictionary<string, string> { ["App"] = "app_nope" }, english: true);
    }

    [Fact]
    public async Task Roles_DuplicateName_AnswersRoleNameDuplicatedNamingIt()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/roles", new { name = "artists" })).Created();
        (await admin.PostAsync("/api/v1/roles", new { name = "artists" }))
            .Error(ErrorCatalog.b_user_rolenameduplicated, 409, new Dictionary<string, string> { ["Role"] = "artists" });
        // Renaming onto an existing name is the same conflict.
        (await admin.PatchAsync("/api/v1/roles/default", new { name = "premium" }))
            .Error(ErrorCatalog.b_user_rolenameduplicated, 409, new Dictionary<string, string> { ["Role"] = "premium" });
    }

    [Fact]
    public async Task Roles_ParallelCreatesOfOneName_CreateExactlyOne()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var results = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => admin.PostAsync("/api/v1/roles", new { name = "racers" })));
        Assert.Single(results, r => r.Status == System.Net.HttpStatusCode.Created);
        foreach (var r in results.Where(r => r.Status != System.Net.HttpStatusCode.Created))
        {
            r.Error(ErrorCatalog.b_user_rolenameduplicated, 409, new Dictionary<string, string> { ["Role"] = "racers" });
        }
    }

    [Fact]
    public async Task Roles_Unknown_AnswersRoleNotFoundNamingIt()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AdminOf(Host).GetAsync("/api/v1/roles/rol_ghost"))
            .Error(ErrorCatalog.b_user_rolenotfound, 404, new Dictionary<string, string> { ["Role"] = "rol_ghost" });
        (await world.AdminOf(Host).DeleteAsync("/api/v1/roles/rol_ghost"))
            .Error(ErrorCatalog.b_user_rolenotfound, 404, new Dictionary<string, string> { ["Role"] = "rol_ghost" });
    }

    [Fact]
    public async Task Token_Issued_WorksAndIsNeverShownAgain()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var issued = (await admin.PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { name = "ci", scopes = new[] { "app" } })).Created();
        var secret = issued.GetProperty("secret").GetString()!;
        Assert.True(Secrets.IsWellFormed(secret, Secrets.TokenPrefix));
        var me = (await Host.Client.With(secret).GetAsync("/api/v1/me")).Ok();
        Assert.Equal(world.AppId, me.GetProperty("appId").GetString());
        Assert.Equal(world.TenantId, me.GetProperty("tenantId").GetString());

        var list = await admin.GetAsync($"/api/v1/apps/{world.AppId}/tokens");
        list.Ok();
        Assert.DoesNotContain(secret, list.Text, StringComparison.Ordinal);
        Assert.DoesNotContain(secret[10..], list.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("\"secret\"", list.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Token_Missing_AnswersApiTokenRequired()
    {
        (await Host.Client.GetAsync("/api/v1/me")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
        (await Host.Client.WithHeader("Authorization", "Bearer ").GetAsync("/api/v1/me")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
    }

    [Fact]
    public async Task Token_MalformedOrMutated_AnswersInvalidApiToken()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var secret = world.AppToken;
        var rng = new Random(7);
        for (var i = 0; i < 50; i++)
        {
            var chars = secret.ToCharArray();
            var at = rng.Next(4, chars.Length);
            chars[at] = chars[at] == 'a' ? 'b' : 'a';
            (await Host.Client.With(new string(chars)).GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
        }

        (await Host.Client.With("hello").GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
        // Well-formed (checksum fine) but never issued.
        (await Host.Client.With(Secrets.Issue(Secrets.TokenPrefix)).GetAsync("/api/v1/me")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
        (await Host.Client.With(Secrets.Issue(Secrets.PlatformKeyPrefix)).GetAsync("/api/v1/accounts")).Error(ErrorCatalog.p_token_invalidapitoken, 401);
    }

    [Fact]
    public async Task Token_RevokedOrDisabled_AnswersTokenNotValid()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var app = world.AppOf(Host);
        (await app.GetAsync("/api/v1/me")).Ok();

        (await admin.PostAsync($"/api/v1/tokens/{world.AppTokenId}/disable")).Ok();
        (await app.GetAsync("/api/v1/me")).Error(ErrorCatalog.b_session_tokennotvalid, 401);
        (await admin.PostAsync($"/api/v1/tokens/{world.AppTokenId}/enable")).Ok();
        (await app.GetAsync("/api/v1/me")).Ok();

        var revoked = (await admin.DeleteAsync($"/api/v1/tokens/{world.AppTokenId}")).Ok();
        Assert.NotEqual(System.Text.Json.JsonValueKind.Null, revoked.GetProperty("revokedAt").ValueKind);
        (await app.GetAsync("/api/v1/me")).Error(ErrorCatalog.b_session_tokennotvalid, 401);
    }

    [Fact]
    public async Task Token_AppScopeOnAdminRoute_AnswersTokenForbidden()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AppOf(Host).GetAsync("/api/v1/apps")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await world.AppOf(Host).PostAsync("/api/v1/roles", new { name = "r" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await world.AdminOf(Host).GetAsync("/api/v1/accounts")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task Token_AppScopeReadingAnotherApp_AnswersInvalidAppId()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var other = (await world.AdminOf(Host).PostAsync("/api/v1/apps", new { name = "other" })).Created().GetProperty("id").GetString()!;
        (await world.AppOf(Host).GetAsync($"/api/v1/apps/{world.AppId}")).Ok();
        (await world.AppOf(Host).GetAsync($"/api/v1/apps/{other}")).Error(ErrorCatalog.p_token_invalidappid, 403);
    }

    [Fact]
    public async Task Token_PastItsExpiry_AnswersTokenNotValid()
    {
        await using var host = await TestHost.StartAsync(fakeClock: true);
        var world = await Scenario.NewTenantAsync(host);
        var expiresAt = host.Clock!.GetUtcNow().AddHours(1);
        var issued = (await world.AdminOf(host).PostAsync($"/api/v1/apps/{world.AppId}/tokens",
            new { name = "short", scopes = new[] { "app" }, expiresAt })).Created();
        var client = host.Client.With(issued.GetProperty("secret").GetString()!);
        (await client.GetAsync("/api/v1/me")).Ok();
        host.Clock.Advance(TimeSpan.FromMinutes(59));
        (await client.GetAsync("/api/v1/me")).Ok();
        host.Clock.Advance(TimeSpan.FromMinutes(1));
        var json = (await client.GetAsync("/api/v1/me")).Error(ErrorCatalog.b_session_tokennotvalid, 401);
        Assert.Equal("token_expired", json.GetProperty("errCode").GetString());
        (await world.AdminOf(host).PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { expiresAt = host.Clock.GetUtcNow().AddSeconds(-1) }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    [Fact]
    public async Task Secrets_AreStoredOnlyAsHashes()
    {
        await using var host = await TestHost.StartAsync();
        var issued = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var world = await Scenario.NewTenantAsync(host);
            issued.Add(world.AdminToken);
            issued.Add(world.AppToken);
        }

        issued.Add(host.AdminKey);
        var dump = await DumpDatabaseAsync(host);
        Assert.True(dump.Length > 1000);
        foreach (var secret in issued)
        {
            Assert.DoesNotContain(secret, dump, StringComparison.Ordinal);
            Assert.DoesNotContain(secret[5..30], dump, StringComparison.Ordinal);
        }
    }

    /// <summary>Every text the database holds: the SQLite files byte for byte, or every row of every table on PostgreSQL.</summary>
    private static async Task<string> DumpDatabaseAsync(TestHost host)
    {
        if (host.Database.Provider == "sqlite")
        {
            var sb = new StringBuilder();
            foreach (var f in Directory.GetFiles(host.Database.Folder, "atelier.db*"))
            {
                await using var s = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var ms = new MemoryStream();
                await s.CopyToAsync(ms);
                sb.Append(Encoding.Latin1.GetString(ms.ToArray()));
            }

            return sb.ToString();
        }

        await using var conn = new Npgsql.NpgsqlConnection(host.Database.ConnectionString);
        await conn.OpenAsync();
        var tables = new List<string>();
        await using (var cmd = new Npgsql.NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", conn))
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                tables.Add(reader.GetString(0));
            }
        }

        var all = new StringBuilder();
        foreach (var t in tables)
        {
            await using var cmd = new Npgsql.NpgsqlCommand($"SELECT t::text FROM \"{t}\" t", conn);
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                all.AppendLine(reader.GetString(0));
            }
        }

        return all.ToString();
    }
}
