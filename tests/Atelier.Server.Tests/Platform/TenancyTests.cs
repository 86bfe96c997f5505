using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Platform;

public class TenancyTests(SharedHost shared) : IClassFixture<SharedHost>
{
    private TestHost Host => shared.Host;

    [Fact]
    public async Task Tenant_CreateInitActivate_WalksTheLifecycle()
    {
        var admin = Host.Admin();
        var uid = "acct-" + Guid.NewGuid().ToString("N")[..8];
        (await admin.PostAsync("/api/v1/accounts", new { uid })).Created();
        var tenant = (await admin.PostAsync("/api/v1/tenants", new { accountUid = uid, name = "Acme" })).Created();
        var id = tenant.GetProperty("id").GetString()!;
        Assert.StartsWith("ten_", id, StringComparison.Ordinal);
        Assert.Equal("created", tenant.GetProperty("state").GetString());

        var init = (await admin.PostAsync($"/api/v1/tenants/{id}/init")).Ok();
        Assert.Equal("initialized", init.GetProperty("tenant").GetProperty("state").GetString());
        Assert.Equal(["default", "premium"], init.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["atelier-demo"], init.GetProperty("models").EnumerateArray().Select(r => r.GetString()));

        // Init again adds nothing twice.
        (await admin.PostAsync($"/api/v1/tenants/{id}/init")).Ok();
        var roles = (await admin.WithHeader("X-Tenant-Id", id).GetAsync("/api/v1/roles")).Ok();
        Assert.Equal(2, roles.GetProperty("total").GetInt32());

        Assert.Equal("active", (await admin.PostAsync($"/api/v1/tenants/{id}/activate")).Ok().GetProperty("state").GetString());
        var listed = (await admin.GetAsync($"/api/v1/tenants?accountUid={uid}&state=active")).Ok();
        Assert.Equal(1, listed.GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Account_Unknown_AnswersAliyunUidNotFound()
    {
        (await Host.Admin().GetAsync("/api/v1/accounts/nobody")).Error(ErrorCatalog.b_user_aliyunuidnotfound, 404);
        (await Host.Admin().PostAsync("/api/v1/tenants", new { accountUid = "nobody", name = "x" }))
            .Error(ErrorCatalog.b_user_aliyunuidnotfound, 404);
    }

    [Fact]
    public async Task Tenant_Unknown_AnswersTenantNotFound()
    {
        (await Host.Admin().GetAsync("/api/v1/tenants/ten_missing")).Error(ErrorCatalog.b_user_tenantnotfound, 404);
        (await Host.Admin().PostAsync("/api/v1/tenants/ten_missing/init")).Error(ErrorCatalog.b_user_tenantnotfound, 404);
        (await Host.Admin().WithHeader("X-Tenant-Id", "ten_missing").GetAsync("/api/v1/apps")).Error(ErrorCatalog.b_user_tenantnotfound, 404);
    }

    [Fact]
    public async Task PlatformAdmin_TenantRouteWithoutTenant_AnswersTenantIdRequired()
    {
        (await Host.Admin().GetAsync("/api/v1/apps")).Error(ErrorCatalog.p_common_tenantidrequired, 400);
    }

    [Fact]
    public async Task TenantId_PresentButBlank_AnswersInvalidTenantIdNul()
    {
        (await Host.Admin().GetAsync("/api/v1/apps?tenantId=")).Error(ErrorCatalog.b_tenant_invalidtenantidnul, 400);
        (await Host.Admin().WithHeader("X-Tenant-Id", "  ").GetAsync("/api/v1/roles")).Error(ErrorCatalog.b_tenant_invalidtenantidnul, 400);
    }

    [Fact]
    public async Task Token_NamingAnotherTenant_AnswersInvalidTenantId()
    {
        var a = await Scenario.NewTenantAsync(Host);
        var b = await Scenario.NewTenantAsync(Host);
        (await a.AdminOf(Host).WithHeader("X-Tenant-Id", b.TenantId).GetAsync("/api/v1/apps")).Error(ErrorCatalog.p_token_invalidtenantid, 403);
        (await a.AdminOf(Host).GetAsync($"/api/v1/apps?tenantId={b.TenantId}")).Error(ErrorCatalog.p_token_invalidtenantid, 403);
        (await a.AdminOf(Host).WithHeader("X-Tenant-Id", a.TenantId).GetAsync("/api/v1/apps")).Ok();
    }

    [Fact]
    public async Task Token_OfInactiveTenant_AnswersTenantNotActive()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AdminOf(Host).GetAsync("/api/v1/apps")).Ok();
        (await Host.Admin().PostAsync($"/api/v1/tenants/{world.TenantId}/deactivate")).Ok();
        (await world.AdminOf(Host).GetAsync("/api/v1/apps")).Error(ErrorCatalog.b_user_tenantnotactive, 403);
        (await world.AppOf(Host).GetAsync("/api/v1/me")).Error(ErrorCatalog.b_user_tenantnotactive, 403);
        (await Host.Admin().PostAsync($"/api/v1/tenants/{world.TenantId}/activate")).Ok();
        (await world.AdminOf(Host).GetAsync("/api/v1/apps")).Ok();
    }

    [Fact]
    public async Task Token_OfNeverActivatedTenant_AnswersTenantNotActive()
    {
        var world = await Scenario.NewTenantAsync(Host, activate: false);
        (await world.AdminOf(Host).GetAsync("/api/v1/tenant")).Error(ErrorCatalog.b_user_tenantnotactive, 403);
    }

    [Fact]
    public async Task Config_BeforeInit_AnswersTenantConfigNotFound()
    {
        var admin = Host.Admin();
        var uid = "acct-" + Guid.NewGuid().ToString("N")[..8];
        (await admin.PostAsync("/api/v1/accounts", new { uid })).Created();
        var id = (await admin.PostAsync("/api/v1/tenants", new { accountUid = uid, name = "Fresh" })).Created().GetProperty("id").GetString()!;
        (await admin.WithHeader("X-Tenant-Id", id).GetAsync("/api/v1/tenant/config")).Error(ErrorCatalog.b_user_tenantconfignotfound, 404);
        (await admin.PostAsync($"/api/v1/tenants/{id}/activate")).Error(ErrorCatalog.b_user_tenantconfignotfound, 404);
        Assert.Equal("created", (await admin.GetAsync($"/api/v1/tenants/{id}")).Ok().GetProperty("state").GetString());
    }

    [Fact]
    public async Task Config_PutAndGet_RoundTrips()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var before = (await admin.GetAsync("/api/v1/tenant/config")).Ok();
        Assert.Equal("default", before.GetProperty("defaultRole").GetString());
        // maxConcurrentJobs is a limit on the tenant: the platform admin's to set.
        var platform = Host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var put = (await platform.PutAsync("/api/v1/tenant/config",
            new { displayName = "Acme Draw", defaultRole = "premium", maxConcurrentJobs = 8, imageRetentionDays = 7, defaultSessionSeconds = 600 })).Ok();
        Assert.Equal(8, put.GetProperty("maxConcurrentJobs").GetInt32());
        var after = (await admin.GetAsync("/api/v1/tenant/config")).Ok();
        Assert.Equal("premium", after.GetProperty("defaultRole").GetString());
        Assert.Equal("Acme Draw", after.GetProperty("displayName").GetString());
        (await admin.PutAsync("/api/v1/tenant/config", new { defaultRole = "vip" }))
            .Error(ErrorCatalog.b_user_rolenotfound, 404, new Dictionary<string, string> { ["Role"] = "vip" });
        (await admin.PutAsync("/api/v1/tenant/config", new { maxConcurrentJobs = 0 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
    }

    [Fact]
    public async Task FunctionSettings_ValidDocument_IsStoredAndReturned()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var doc = "{\"defaultEngine\":\"builtin\",\"timeoutSeconds\":120,\"allowedModelTypes\":[\"checkpoint\",\"lora\"],\"environment\":{\"A\":\"1\"}}";
        (await admin.PutAsync("/api/v1/tenant/function-settings", doc)).Ok();
        var got = (await admin.GetAsync("/api/v1/tenant/function-settings")).Ok().GetProperty("settings");
        Assert.Equal(120, got.GetProperty("timeoutSeconds").GetInt32());
        Assert.Equal("builtin", got.GetProperty("defaultEngine").GetString());
        var schema = await admin.GetAsync("/api/v1/tenant/function-settings/schema");
        Assert.Equal("object", schema.Json.GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("{\"defaultEngine\":", "json_parse")]
    [InlineData("not json at all", "json_parse")]
    [InlineData("{\"defaultEngine\":\"tensorrt\"}", "schema_violation")]
    [InlineData("{\"timeoutSeconds\":0}", "schema_violation")]
    [InlineData("{\"timeoutSeconds\":\"60\"}", "schema_violation")]
    [InlineData("{\"unknownKnob\":true}", "schema_violation")]
    [InlineData("{\"allowedModelTypes\":[\"lora\",\"lora\"]}", "schema_violation")]
    [InlineData("[1,2,3]", "schema_violation")]
    public async Task FunctionSettings_BadDocument_AnswersSchemaParseErrorAndKeepsOld(string body, string errCode)
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PutAsync("/api/v1/tenant/function-settings", "{\"timeoutSeconds\":30}")).Ok();
        var json = (await admin.PutAsync("/api/v1/tenant/function-settings", body)).Error(ErrorCatalog.b_user_globalfunctionschemaparseerror, 400);
        Assert.Equal(errCode, json.GetProperty("errCode").GetString());
        var kept = (await admin.GetAsync("/api/v1/tenant/function-settings")).Ok().GetProperty("settings");
        Assert.Equal("{\"timeoutSeconds\":30}", kept.GetRawText());
    }

    [Fact]
    public async Task MutatingAdminCall_WithoutOperator_AnswersInvalidOperatorIdNul()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var noOperator = Host.Client.With(world.AdminToken);
        (await noOperator.PostAsync("/api/v1/roles", new { name = "x" })).Error(ErrorCatalog.b_operator_invalidoperatoridnul, 400);
        (await Host.Client.With(Host.AdminKey).PostAsync("/api/v1/accounts", new { uid = "u-no-op" })).Error(ErrorCatalog.b_operator_invalidoperatoridnul, 400);
        (await Host.Client.With(world.AdminToken, " ").PostAsync("/api/v1/roles", new { name = "x" })).Error(ErrorCatalog.b_operator_invalidoperatoridnul, 400);
        // Nothing was written.
        var roles = (await world.AdminOf(Host).GetAsync("/api/v1/roles")).Ok();
        Assert.DoesNotContain(roles.GetProperty("items").EnumerateArray(), r => r.GetProperty("name").GetString() == "x");
    }

    [Fact]
    public async Task AuditLog_RecordsOperatorCredentialAndRequest()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host, "alice@acme");
        var created = await admin.PostAsync("/api/v1/roles", new { name = "editors" });
        var roleId = created.Created().GetProperty("id").GetString()!;
        var log = (await admin.GetAsync("/api/v1/audit-log?operatorId=alice@acme")).Ok();
        var entry = Assert.Single(log.GetProperty("items").EnumerateArray());
        Assert.Equal("role.create", entry.GetProperty("action").GetString());
        Assert.Equal(roleId, entry.GetProperty("resourceId").GetString());
        Assert.Equal(created.RequestId, entry.GetProperty("requestId").GetString());
        Assert.StartsWith("tok_", entry.GetProperty("credentialId").GetString(), StringComparison.Ordinal);

        var platform = (await Host.Admin().GetAsync("/api/v1/platform/audit-log?operatorId=op-platform")).Ok();
        Assert.Contains(platform.GetProperty("items").EnumerateArray(), e => e.GetProperty("resourceId").GetString() == world.AccountUid);
    }

    [Fact]
    public async Task Operators_CreateAndList()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.PostAsync("/api/v1/operators", new { id = "bob", name = "Bob", email = "bob@acme.test" })).Created();
        var list = (await admin.GetAsync("/api/v1/operators")).Ok();
        Assert.Equal("Bob", Assert.Single(list.GetProperty("items").EnumerateArray()).GetProperty("name").GetString());
        // Now that the tenant has an operator, its admin calls name a registered one.
        (await world.AdminOf(Host, "bob").PostAsync("/api/v1/operators", new { id = "bob", name = "Bob 2" })).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }
}

/// <summary>Tenant init against defaults files that are missing, unreadable or wrong: each on a server of its own.</summary>
public class TenantDefaultsTests
{
    private static async Task<(TestHost Host, string TenantId)> HostWithDefaultsAsync(string? content)
    {
        var folder = Directory.CreateTempSubdirectory("atelier-defaults-").FullName;
        var path = Path.Combine(folder, "tenant-defaults.json");
        if (content is not null)
        {
            await File.WriteAllTextAsync(path, content);
        }

        var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Tenancy:DefaultsFile"] = path });
        var admin = host.Admin();
        (await admin.PostAsync("/api/v1/accounts", new { uid = "acct" })).Created();
        var id = (await admin.PostAsync("/api/v1/tenants", new { accountUid = "acct", name = "T" })).Created().GetProperty("id").GetString()!;
        return (host, id);
    }

    [Fact]
    public async Task Init_DefaultsFileMissing_AnswersDefaultModelsFileNotExist()
    {
        var (host, id) = await HostWithDefaultsAsync(null);
        await using var _ = host;
        (await host.Admin().PostAsync($"/api/v1/tenants/{id}/init")).Error(ErrorCatalog.b_model_defaultmodelsfilenotexist, 500);
        Assert.Equal("created", (await host.Admin().GetAsync($"/api/v1/tenants/{id}")).Ok().GetProperty("state").GetString());
    }

    [Fact]
    public async Task Init_DefaultsFileNotJson_AnswersDefaultModelsFileReadError()
    {
        var (host, id) = await HostWithDefaultsAsync("{ \"models\": [ {\"name\": ");
        await using var _ = host;
        (await host.Admin().PostAsync($"/api/v1/tenants/{id}/init")).Error(ErrorCatalog.b_model_defaultmodelsfilereaderror, 500);
        (await host.Admin().WithHeader("X-Tenant-Id", id).GetAsync("/api/v1/tenant/config")).Error(ErrorCatalog.b_user_tenantconfignotfound, 404);
    }

    [Fact]
    public async Task Init_DefaultsMakeNoSense_AnswersInitTenantErrorAndWritesNothing()
    {
        var defaults = JsonSerializer.Serialize(new
        {
            roles = new[] { new { name = "default" } },
            config = new { defaultRole = "ghost" },
            models = new object[] { new { name = "m", type = "hologram" }, new { name = "n", type = "lora", sourceUrl = "https://example.com/n.ckpt" } },
        });
        var (host, id) = await HostWithDefaultsAsync(defaults);
        await using var _ = host;
        var json = (await host.Admin().PostAsync($"/api/v1/tenants/{id}/init")).Error(ErrorCatalog.b_user_inittenanterror, 500);
        Assert.Contains("ghost", json.GetProperty("errMessage").GetString()!, StringComparison.Ordinal);
        Assert.Contains("hologram", json.GetProperty("errMessage").GetString()!, StringComparison.Ordinal);
        Assert.Contains("'n.ckpt', which a lora does not take", json.GetProperty("errMessage").GetString()!, StringComparison.Ordinal);
        var roles = (await host.Admin().WithHeader("X-Tenant-Id", id).GetAsync("/api/v1/roles")).Ok();
        Assert.Equal(0, roles.GetProperty("total").GetInt32());
    }
}
