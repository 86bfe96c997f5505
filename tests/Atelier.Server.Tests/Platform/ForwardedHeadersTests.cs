using Atelier.Server.Hosting;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Platform;

/// <summary>
/// Behind a TLS proxy (issue 16, item 6): with <c>Atelier:Server:ForwardedHeaders:Enabled</c> the links the server hands
/// out name the public scheme and host the proxy forwarded; without it (the default) the headers are ignored.
/// </summary>
public class ForwardedHeadersTests
{
    private const string PublicHost = "atelier.example.com";

    [Fact]
    public async Task CreateSession_ForwardingEnabled_StudioAndUploadUrlsUseTheForwardedSchemeAndHost()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Server:ForwardedHeaders:Enabled"] = "true" });
        var world = await Scenario.NewTenantAsync(host);

        var studioUrl = await StudioUrlAsync(host, world);
        var uploadUrl = await UploadUrlAsync(host, world);

        Assert.StartsWith($"https://{PublicHost}/", studioUrl, StringComparison.Ordinal);
        Assert.StartsWith($"https://{PublicHost}/api/v1/uploads/", uploadUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateSession_ForwardingDisabled_ForwardedHeadersAreIgnored()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);

        var studioUrl = await StudioUrlAsync(host, world);

        Assert.DoesNotContain(PublicHost, studioUrl, StringComparison.Ordinal);
        Assert.StartsWith($"http://{host.BaseAddress.Authority}/", studioUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateSession_ProxyNotTrusted_ForwardedHeadersAreIgnored()
    {
        // Forwarding on, but only from a proxy elsewhere: a request from loopback is not from a trusted proxy.
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Server:ForwardedHeaders:Enabled"] = "true",
            ["Atelier:Server:ForwardedHeaders:KnownNetworks:0"] = "10.0.0.0/8",
        });
        var world = await Scenario.NewTenantAsync(host);

        var studioUrl = await StudioUrlAsync(host, world);

        Assert.StartsWith($"http://{host.BaseAddress.Authority}/", studioUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_ForwardedProxyNotAnAddress_IsRefusedNamingTheKey()
    {
        await using var db = await TestDatabase.CreateAsync();
        var error = await Assert.ThrowsAsync<InvalidConfigurationException>(() => TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Server:ForwardedHeaders:KnownProxies:0"] = "proxy.example.com",
            ["Atelier:Server:ForwardedHeaders:KnownNetworks:0"] = "10.0.0.0/99",
        }, database: db));

        Assert.Contains(error.Problems, p => p.Contains("Atelier:Server:ForwardedHeaders:KnownProxies", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("Atelier:Server:ForwardedHeaders:KnownNetworks", StringComparison.Ordinal));
    }

    private static ApiClient Forwarded(ApiClient client) =>
        client.WithHeader("X-Forwarded-Proto", "https").WithHeader("X-Forwarded-Host", PublicHost).WithHeader("X-Forwarded-For", "203.0.113.7");

    private static async Task<string> StudioUrlAsync(TestHost host, TenantWorld world)
    {
        var created = (await Forwarded(world.AppOf(host)).PostAsync("/api/v1/sessions", new { endUserId = "proxied", expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        return created.GetProperty("studioUrl").GetString()!;
    }

    private static async Task<string> UploadUrlAsync(TestHost host, TenantWorld world)
    {
        var upload = (await Forwarded(world.AdminOf(host)).PostAsync("/api/v1/uploads", new { type = "lora", fileName = "a.safetensors", size = 10 })).Created();
        return upload.GetProperty("url").GetString()!;
    }
}
