using System.Text.Json;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>A ready tenant: account, tenant (initialised and active), one app, an admin token and an app token.</summary>
public sealed record TenantWorld(string AccountUid, string TenantId, string AppId, string AdminToken, string AppToken, string AppTokenId)
{
    public ApiClient AdminOf(TestHost host, string operatorId = "op-tenant") => host.Client.With(AdminToken, operatorId);
    public ApiClient AppOf(TestHost host) => host.Client.With(AppToken);
}

public static class Scenario
{
    public static Task<TenantWorld> NewTenantAsync(TestHost host, bool activate = true) => NewTenantAsync(host.Admin(), activate);

    /// <param name="admin">A client with the platform admin key and an operator id (of a test host, or of a server process).</param>
    public static async Task<TenantWorld> NewTenantAsync(ApiClient admin, bool activate = true)
    {
        var uid = "acct-" + Guid.NewGuid().ToString("N")[..10];
        (await admin.PostAsync("/api/v1/accounts", new { uid, name = "Account " + uid })).Created();
        var tenantId = (await admin.PostAsync("/api/v1/tenants", new { accountUid = uid, name = "Tenant of " + uid })).Created()
            .GetProperty("id").GetString()!;
        (await admin.PostAsync($"/api/v1/tenants/{tenantId}/init")).Ok();
        if (activate)
        {
            (await admin.PostAsync($"/api/v1/tenants/{tenantId}/activate")).Ok();
        }

        var inTenant = admin.WithHeader("X-Tenant-Id", tenantId);
        var appId = (await inTenant.PostAsync("/api/v1/apps", new { name = "studio" })).Created().GetProperty("id").GetString()!;
        var adminToken = (await inTenant.PostAsync($"/api/v1/apps/{appId}/tokens", new { name = "admin", scopes = new[] { "admin" } })).Created();
        var appToken = (await inTenant.PostAsync($"/api/v1/apps/{appId}/tokens", new { name = "backend", scopes = new[] { "app" } })).Created();
        return new TenantWorld(uid, tenantId, appId, Secret(adminToken), Secret(appToken), appToken.GetProperty("token").GetProperty("id").GetString()!);
    }

    /// <summary>Another app of the world's tenant, with an app-scoped token of its own.</summary>
    public static async Task<(string AppId, ApiClient Client)> NewAppAsync(TestHost host, TenantWorld world, string name)
    {
        var admin = world.AdminOf(host);
        var appId = (await admin.PostAsync("/api/v1/apps", new { name })).Created().GetProperty("id").GetString()!;
        var secret = (await admin.PostAsync($"/api/v1/apps/{appId}/tokens", new { scopes = new[] { "app" } })).Created().GetProperty("secret").GetString()!;
        return (appId, host.Client.With(secret));
    }

    /// <summary>The tenant config as <paramref name="config"/> has it, with <c>maxConcurrentJobs</c> set to <paramref name="cap"/> (a PUT body).</summary>
    public static object ConfigWithJobCap(JsonElement config, int cap) => new
    {
        defaultRole = config.GetProperty("defaultRole").GetString(), maxConcurrentJobs = cap,
        imageRetentionDays = config.GetProperty("imageRetentionDays").GetInt32(), defaultSessionSeconds = config.GetProperty("defaultSessionSeconds").GetInt32(),
    };

    private static string Secret(JsonElement issued) => issued.GetProperty("secret").GetString()!;
}

/// <summary>One server per test class that wants to share it (tests inside must not depend on each other).</summary>
public sealed class SharedHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Host = await TestHost.StartAsync();

    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}

/// <summary>A server whose clock the tests move, with a sweeper that runs every 30 s of that clock.</summary>
public sealed class FakeClockHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;
    public async ValueTask InitializeAsync() => Host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Sessions:SweepIntervalSeconds"] = "30" }, fakeClock: true);
    public async ValueTask DisposeAsync() => await Host.DisposeAsync();
}
