using System.Text.Json;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Models;

public class DefaultModelsTests
{
    [Fact]
    public async Task Init_DefaultModelWithUrl_IsDownloadedIntoADefaultVersion()
    {
        await using var files = await FileServer.StartAsync();
        var bytes = ModelFiles.Checkpoint();
        var url = files.Add("base.safetensors", bytes);
        var folder = Directory.CreateTempSubdirectory("atelier-defaults-").FullName;
        var path = Path.Combine(folder, "defaults.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new
        {
            roles = new[] { new { name = "default" } },
            models = new object[]
            {
                new { name = "base-model", type = "checkpoint", sourceUrl = url },
                new { name = "local-only", type = "onnx" },
            },
        }));
        await using var host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Tenancy:DefaultsFile"] = path,
            ["Atelier:Models:AllowPrivateNetworks"] = "true",
        });
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var model = (await admin.GetAsync("/api/v1/models?name=base-model")).Ok().GetProperty("items")[0];
        var versions = (await admin.GetAsync($"/api/v1/models/{model.GetProperty("id").GetString()}/versions")).Ok();
        var version = Assert.Single(versions.EnumerateArray());
        Assert.Equal("default", version.GetProperty("name").GetString());
        var file = version.GetProperty("files")[0];
        Assert.Equal("base.safetensors", file.GetProperty("aliasName").GetString());
        Assert.True(file.GetProperty("primary").GetBoolean());
        await Library.WaitForDownloadAsync(admin, file.GetProperty("id").GetString()!, Library.Stored);
        var synced = (await admin.GetAsync($"/api/v1/model-versions/{version.GetProperty("id").GetString()}")).Ok();
        Assert.Equal("synced", synced.GetProperty("syncState").GetString());
        Assert.Equal(ModelFiles.Sha256(bytes), synced.GetProperty("files")[0].GetProperty("sha256").GetString());
    }
}
