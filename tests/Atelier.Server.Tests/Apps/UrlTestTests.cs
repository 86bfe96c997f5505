using System.Net;
using System.Net.Sockets;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Apps;

/// <summary>The URL connectivity test through the API, against real listeners on loopback.</summary>
public class UrlTestTests
{
    private static string Step(ApiResult r) => r.Error(ErrorCatalog.b_user_urlconntestfailed, 400).GetProperty("errCode").GetString()!;

    [Fact]
    public async Task PrivateAddresses_AreRefused_AndNothingConnects()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        await using var files = await FileServer.StartAsync();
        var admin = world.AdminOf(host);
        foreach (var url in new[]
                 {
                     files.BaseAddress + "files/x", $"http://localhost:{files.BaseAddress.Port}/", "http://[::1]/", "http://169.254.169.254/latest/meta-data",
                     "http://10.0.0.1/", "http://192.168.1.1/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
                 })
        {
            Assert.Contains(Step(await admin.PostAsync("/api/v1/url-tests", new { url })), new[] { "address", "url" });
        }

        Assert.Equal(0, files.Connections);
        Assert.Equal("url", Step(await admin.PostAsync("/api/v1/url-tests", new { url = "ftp://example.com/" })));
        Assert.Equal("url", Step(await admin.PostAsync("/api/v1/url-tests", new { url = "not a url" })));
        (await world.AppOf(host).PostAsync("/api/v1/url-tests", new { url = "https://example.com/" })).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task EachStep_ThatFails_IsNamed()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:UrlTests:AllowPrivateNetworks"] = "true", ["Atelier:UrlTests:TimeoutSeconds"] = "1",
        });
        var world = await Scenario.NewTenantAsync(host);
        await using var files = await FileServer.StartAsync();
        var admin = world.AdminOf(host);

        var ok = (await admin.PostAsync("/api/v1/url-tests", new { url = files.BaseAddress + "files/missing" })).Ok();
        Assert.True(ok.GetProperty("ok").GetBoolean());
        Assert.Equal(405, ok.GetProperty("status").GetInt32()); // HEAD on a GET-only route: an HTTP answer is an answer
        Assert.Equal(1, files.Connections);

        // Nothing listens on this port.
        var closed = AtelierProcess.FreePort();
        Assert.Equal("connect", Step(await admin.PostAsync("/api/v1/url-tests", new { url = $"http://127.0.0.1:{closed}/" })));
        // A name that does not resolve.
        Assert.Equal("dns", Step(await admin.PostAsync("/api/v1/url-tests", new { url = "http://no-such-host.invalid/" })));
        // TLS to a server that speaks plain HTTP.
        Assert.Equal("tls", Step(await admin.PostAsync("/api/v1/url-tests", new { url = $"https://127.0.0.1:{files.BaseAddress.Port}/" })));
        // A listener that accepts and never answers.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var accepted = silent.AcceptSocketAsync();
        var port = ((IPEndPoint)silent.LocalEndpoint).Port;
        Assert.Equal("timeout", Step(await admin.PostAsync("/api/v1/url-tests", new { url = $"http://127.0.0.1:{port}/" })));
        (await accepted).Dispose();
    }
}
