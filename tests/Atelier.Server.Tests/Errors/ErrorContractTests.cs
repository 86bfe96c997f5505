using System.Text.Json;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Data;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Errors;

public class ErrorContractTests(SharedHost shared) : IClassFixture<SharedHost>
{
    private TestHost Host => shared.Host;

    [Fact]
    public async Task Envelope_NoAcceptLanguage_IsChineseWithRequestIdInHeaderAndBody()
    {
        var r = await Host.Client.GetAsync("/api/v1/apps");
        var json = r.Error(ErrorCatalog.p_common_apitokenrequired, 401);
        Assert.Equal("apitoken不能为空", json.GetProperty("subErrMessage").GetString());
        Assert.StartsWith("req_", r.RequestId, StringComparison.Ordinal);
        Assert.Contains("apitoken不能为空", r.Text, StringComparison.Ordinal); // UTF-8 text, not \u escapes
    }

    [Fact]
    public async Task Envelope_AcceptLanguageEnglish_IsEnglish()
    {
        var r = await Host.Client.WithHeader("Accept-Language", "en-US,en;q=0.9").GetAsync("/api/v1/apps");
        r.Error(ErrorCatalog.p_common_apitokenrequired, 401, english: true);
        var zh = await Host.Client.WithHeader("Accept-Language", "zh-CN,en;q=0.5").GetAsync("/api/v1/apps");
        zh.Error(ErrorCatalog.p_common_apitokenrequired, 401);
    }

    /// <summary>AUTOMATIC1111's clients read <c>detail</c> (and <c>error</c>, <c>errors</c>): on its routes the envelope carries them too, and only there.</summary>
    [Fact]
    public async Task A1111Routes_ErrorsCarryA1111sFields_BesideTheEnvelope()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host).WithHeader("Accept-Language", "en");
        var refused = await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "x", steps = 0 });
        var json = refused.Error(ErrorCatalog.p_common_inputinvalid, 400, english: true);
        var detail = json.GetProperty("detail").GetString()!;
        Assert.Contains("steps", detail, StringComparison.Ordinal);
        Assert.StartsWith(json.GetProperty("subErrMessage").GetString()!, detail, StringComparison.Ordinal);
        Assert.Equal(("p_common_inputinvalid", detail), (json.GetProperty("error").GetString(), json.GetProperty("errors").GetString()));
        // Without a credential too; and never on the native API.
        var anonymous = (await Host.Client.GetAsync("/sdapi/v1/sd-models")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
        Assert.Equal(anonymous.GetProperty("subErrMessage").GetString(), anonymous.GetProperty("detail").GetString());
        var native = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "x", steps = 0 })).Error(ErrorCatalog.p_common_inputinvalid, 400, english: true);
        Assert.False(native.TryGetProperty("detail", out _));
        Assert.False(native.TryGetProperty("error", out _));
    }

    /// <summary>The language of a message: the caller's Accept-Language when it ranks en or zh, else the tenant's choice, else the server's default.</summary>
    [Fact]
    public async Task ErrorLanguage_IsTheHeaders_ThenTheTenants_ThenTheServers()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var missing = "/api/v1/models/mdl_nothing_here";
        static bool Chinese(JsonElement e) => e.GetProperty("subErrMessage").GetString()!.Any(c => c >= 0x4E00 && c <= 0x9FFF);
        Assert.True(Chinese((await admin.GetAsync(missing)).Json));
        Assert.True(Chinese((await admin.WithHeader("Accept-Language", "fr-FR").GetAsync(missing)).Json));

        var config = (await admin.GetAsync("/api/v1/tenant/config")).Ok();
        object Put(string? language) => new
        {
            displayName = config.GetProperty("displayName").GetString(), defaultRole = config.GetProperty("defaultRole").GetString(),
            maxConcurrentJobs = config.GetProperty("maxConcurrentJobs").GetInt32(), imageRetentionDays = config.GetProperty("imageRetentionDays").GetInt32(),
            defaultSessionSeconds = config.GetProperty("defaultSessionSeconds").GetInt32(), language,
        };
        (await admin.PutAsync("/api/v1/tenant/config", Put("fr"))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal("en", (await admin.PutAsync("/api/v1/tenant/config", Put("en"))).Ok().GetProperty("language").GetString());
        Assert.False(Chinese((await admin.GetAsync(missing)).Json));
        Assert.False(Chinese((await world.AppOf(Host).GetAsync(missing)).Json));
        Assert.True(Chinese((await admin.WithHeader("Accept-Language", "zh-CN").GetAsync(missing)).Json));
        // Another tenant keeps the server's default.
        var other = await Scenario.NewTenantAsync(Host);
        Assert.True(Chinese((await other.AdminOf(Host).GetAsync(missing)).Json));

        await using var english = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Server:DefaultLanguage"] = "en" });
        (await english.Client.GetAsync("/api/v1/apps")).Error(ErrorCatalog.p_common_apitokenrequired, 401, english: true);
        (await english.Client.WithHeader("Accept-Language", "zh").GetAsync("/api/v1/apps")).Error(ErrorCatalog.p_common_apitokenrequired, 401);
    }

    [Fact]
    public async Task RequestId_IsAlwaysOurs_NeverTheClients()
    {
        // The client's id is kept beside ours (logs, audit log: AuditTrustTests), never in its place.
        var r = await Host.Client.WithHeader("X-Request-Id", "client-trace-12345").GetAsync("/api/v1/apps");
        Assert.StartsWith("req_", r.RequestId, StringComparison.Ordinal);
        var junk = await Host.Client.WithHeader("X-Request-Id", "bad id with spaces").GetAsync("/api/v1/apps");
        Assert.StartsWith("req_", junk.RequestId, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedJson_AnswersNeedCorrectInputFormat()
    {
        var admin = Host.Admin();
        var r = await admin.PostAsync("/api/v1/accounts", "{\"uid\": \"a1\", ");
        var json = r.Error(ErrorCatalog.p_common_needcorrectinputformat, 400);
        Assert.Equal("binding", json.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task WrongTypeAndUnknownEnum_AnswerNeedCorrectInputFormat()
    {
        var admin = Host.Admin();
        (await admin.PostAsync("/api/v1/accounts", new { uid = 42, name = true })).Error(ErrorCatalog.p_common_needcorrectinputformat, 400);
        (await admin.GetAsync("/api/v1/tenants?state=sleeping")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await admin.GetAsync("/api/v1/tenants?state=1")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        var world = await Scenario.NewTenantAsync(Host);
        var tenantAdmin = world.AdminOf(Host);
        (await tenantAdmin.PostAsync($"/api/v1/apps/{world.AppId}/tokens", new { scopes = new[] { "root" } }))
            .Error(ErrorCatalog.p_common_needcorrectinputformat, 400);
        (await tenantAdmin.PostAsync($"/api/v1/apps/{world.AppId}/tokens", "{\"scopes\":[1]}"))
            .Error(ErrorCatalog.p_common_needcorrectinputformat, 400);
    }

    [Fact]
    public async Task InvalidField_AnswersInputInvalidNamingTheField()
    {
        var r = await Host.Admin().PostAsync("/api/v1/accounts", new { uid = new string('x', 65) });
        r.Error(ErrorCatalog.p_common_inputinvalid, 400, new Dictionary<string, string> { ["Input"] = "uid: is longer than 64 characters" });
        var en = await Host.Admin().WithHeader("Accept-Language", "en").PostAsync("/api/v1/accounts", new { uid = "has space" });
        en.Error(ErrorCatalog.p_common_inputinvalid, 400, new Dictionary<string, string> { ["Input"] = "uid: may hold only letters, digits and . _ - @" }, english: true);
    }

    [Fact]
    public async Task BodyOverLimit_Answers413InEnvelope()
    {
        var big = "{\"uid\":\"" + new string('a', 1024 * 1024 + 10) + "\"}";
        // "Expect: 100-continue": the client sends the body only once the server asks for it. The server answers 413 from
        // the declared length instead, so the answer is read whole (sent at once, the body could meet a closed socket).
        using var http = new HttpClient(new SocketsHttpHandler { Expect100ContinueTimeout = TimeSpan.FromSeconds(60) })
        {
            BaseAddress = Host.BaseAddress, DefaultRequestHeaders = { ExpectContinue = true },
        };
        var r = await new ApiClient(http).With(Host.AdminKey, "op-platform").PostAsync("/api/v1/accounts", big);
        var json = r.Error(ErrorCatalog.p_common_inputinvalid, 413);
        Assert.Equal("body_too_large", json.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task UnknownRouteAndWrongMethod_AnswerInEnvelope()
    {
        (await Host.Admin().GetAsync("/api/v1/nothing-here")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        (await Host.Admin().PutAsync("/api/v1/accounts", new { })).Error(ErrorCatalog.p_common_inputinvalid, 405);
    }

    [Fact]
    public async Task PageSizeOverCap_AnswersPageSizeExceedLimit()
    {
        (await Host.Admin().GetAsync("/api/v1/accounts?pageSize=101")).Error(ErrorCatalog.b_query_pagesizeexceedlimit, 400);
        (await Host.Admin().GetAsync("/api/v1/accounts?pageSize=0")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await Host.Admin().GetAsync("/api/v1/accounts?pageSize=100")).Ok();
    }

    [Fact]
    public async Task HealthAndReadiness_AnswerWithoutCredentials()
    {
        var live = await Host.Client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, live.Status);
        var ready = await Host.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.Status);
    }

    [Fact]
    public async Task OpenApi_DocumentAndReferencePage_AreServed()
    {
        var doc = await Host.Client.GetAsync("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, doc.Status);
        var paths = doc.Json.GetProperty("paths");
        Assert.True(paths.TryGetProperty("/api/v1/apps", out _));
        Assert.True(paths.TryGetProperty("/api/v1/tenants/{tenantId}/init", out _));
        var page = await Host.Client.GetAsync("/scalar/v1");
        Assert.Equal(HttpStatusCode.OK, page.Status);
        Assert.Contains("<html", page.Text, StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>Failures below the API: each runs on a server and database of its own, since it breaks them on purpose.</summary>
public class InternalFailureTests
{
    [Fact]
    public async Task DatabaseFailure_AnswersDbExecuteExceptionWithProviderCause()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        using (var scope = host.Services.CreateScope())
        {
            // A real failure: the table the query needs is gone.
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            await db.Database.ExecuteSqlRawAsync("DROP TABLE roles");
        }

        var r = await world.AdminOf(host).GetAsync("/api/v1/roles");
        var json = r.Error(ErrorCatalog.s_common_dbexecuteexception, 500);
        var errCode = json.GetProperty("errCode").GetString()!;
        Assert.True(errCode is "sqlite_1" or "postgres_42P01", errCode);
        Assert.Contains("roles", json.GetProperty("errMessage").GetString()!, StringComparison.Ordinal);
        Assert.DoesNotContain("SELECT", r.Text, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CorruptStoredDocument_AnswersGlobalExceptionWithoutDetail()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        using (var scope = host.Services.CreateScope())
        {
            // Someone edited the database by hand and left a broken document behind.
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            await db.Database.ExecuteSqlRawAsync("UPDATE tenant_configs SET \"FunctionSettingsJson\" = {0}", "{broken");
        }

        var r = await world.AdminOf(host).GetAsync("/api/v1/tenant/function-settings");
        var json = r.Error(ErrorCatalog.s_common_globalexception, 500);
        Assert.Equal("internal", json.GetProperty("errCode").GetString());
        Assert.Contains(r.RequestId!, json.GetProperty("errMessage").GetString()!, StringComparison.Ordinal);
    }
}
