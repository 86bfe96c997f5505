using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>
/// The IPv6 forms the address guard refuses besides the plain ones (loopback, ULA, link-local, IPv4-mapped): those that
/// carry an IPv4 address inside (IPv4-compatible, NAT64, 6to4, Teredo) and the deprecated site-local range, through every
/// route that takes a URL Atelier will call.
/// </summary>
public class AddressGuardTests
{
    private static readonly string[] Hosts =
    [
        "[::127.0.0.1]", "[::a9fe:a9fe]", "[::]", "[::ffff:0:7f00:1]", "[fec0::1]", "[feff::1]", "[2002:7f00:1::1]", "[2002:a9fe:a9fe::]",
        "[64:ff9b::7f00:1]", "[64:ff9b::a9fe:a9fe]", "[64:ff9b:1::a00:1]", "[2001::1]", "[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "[100::1]",
    ];

    [Fact]
    public async Task Ipv6FormsThatHideAPrivateAddress_AreRefused_OnEveryRoute()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var app = world.AppOf(host);
        var model = await Library.ModelAsync(admin, "lora");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;

        foreach (var (h, i) in Hosts.Select((h, i) => (h, i)))
        {
            var download = (await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = $"g{i}.safetensors", url = $"http://{h}/a.safetensors" }))
                .Error(ErrorCatalog.p_model_invokemodeldownloaderror, 400);
            Assert.Contains("private, loopback or reserved", download.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);

            (await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = "a lake", steps = 2 }, webhook = $"http://{h}:8080/hook" }))
                .Error(ErrorCatalog.p_common_inputinvalid, 400);
            (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = $"http://{h}/moderate" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
            Assert.Equal("url", (await admin.PostAsync("/api/v1/url-tests", new { url = $"http://{h}/" }))
                .Error(ErrorCatalog.b_user_urlconntestfailed, 400).GetProperty("errCode").GetString());
        }

        // A public IPv6 address beside those ranges is not caught by them (saved only: nothing calls it).
        (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = "http://[2001:4860:4860::8888]/moderate" })).Ok();
        (await admin.PutAsync("/api/v1/safety-rules", new { moderationUrl = (string?)null })).Ok();
    }
}
