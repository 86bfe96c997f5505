using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Security;

/// <summary>Model downloads on a server with the address guard on (the default): nothing on the server's own networks is fetched.</summary>
public class DownloadGuardTests
{
    [Fact]
    public async Task HostileUrls_AreRefused_AndTheListenerSeesNoConnection()
    {
        await using var files = await FileServer.StartAsync();
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var port = files.BaseAddress.Port;
        var model = await Library.ModelAsync(admin, "lora");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;

        string[] refusedAtOnce =
        [
            $"http://127.0.0.1:{port}/files/a.safetensors", $"http://127.1:{port}/a.safetensors", $"http://2130706433:{port}/a.safetensors",
            $"http://0x7f000001:{port}/a.safetensors", $"http://[::1]:{port}/a.safetensors", $"http://[::ffff:127.0.0.1]:{port}/a.safetensors",
            $"http://0.0.0.0:{port}/a.safetensors", "http://169.254.169.254/latest/meta-data.safetensors", "http://100.100.100.200/a.safetensors",
            "http://10.0.0.1/a.safetensors", "http://172.16.5.4/a.safetensors", "http://192.168.1.1/a.safetensors", "http://[fe80::1]/a.safetensors",
            "http://[fc00::1]/a.safetensors", "http://224.0.0.1/a.safetensors", "ftp://example.com/a.safetensors", "file:///etc/passwd.safetensors",
            "gopher://example.com/a.safetensors", "http://user:pass@example.com/a.safetensors", "not a url",
        ];
        foreach (var (url, i) in refusedAtOnce.Select((u, i) => (u, i)))
        {
            var r = await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = $"f{i}.safetensors", url });
            r.Error(ErrorCatalog.p_model_invokemodeldownloaderror, 400);
        }

        // Names are checked where they lead, at connect time (DNS rebinding and redirects included).
        // (Names resolved through /etc/hosts only, so the test needs no DNS server.)
        string[] refusedAtConnect = [$"http://localhost:{port}/files/a.safetensors", $"http://LOCALHOST:{port}/files/b.safetensors"];
        var fileIds = new List<string>();
        foreach (var (url, i) in refusedAtConnect.Select((u, i) => (u, i)))
        {
            fileIds.Add((await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = $"late{i}.safetensors", url }))
                .Created().GetProperty("id").GetString()!);
        }

        foreach (var id in fileIds)
        {
            await Library.WaitForDownloadAsync(admin, id, Library.Failed);
            (await admin.GetAsync($"/api/v1/model-files/{id}/download")).Error(ErrorCatalog.p_model_invokemodeldownloaderror, 502);
        }

        Assert.Equal(0, files.Connections);
    }
}
