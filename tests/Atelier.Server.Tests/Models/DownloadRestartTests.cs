using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Models;

public class DownloadRestartTests
{
    [Fact]
    public async Task Download_ServerStoppedMidway_CompletesAfterRestart()
    {
        await using var files = await FileServer.StartAsync();
        files.SlowBytesPerSecond = 64 * 1024;
        var bytes = ModelFiles.Safetensors(["first_stage_model.decoder.x"], floatsPerTensor: 100_000); // ~400 KB: ~6 s at this rate
        var name = $"restart-{Guid.NewGuid():N}.safetensors";
        files.Add(name, bytes);
        var settings = new Dictionary<string, string> { ["Atelier:Models:AllowPrivateNetworks"] = "true" };
        var db = await TestDatabase.CreateAsync();
        await using var _ = db;

        string fileId;
        string adminToken;
        var first = await TestHost.StartAsync(settings, database: db);
        try
        {
            var world = await Scenario.NewTenantAsync(first);
            adminToken = world.AdminToken;
            var admin = world.AdminOf(first);
            var model = await Library.ModelAsync(admin, "checkpoint");
            var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
            {
                name = "v1", files = new[] { new { aliasName = "big.safetensors", url = new Uri(files.BaseAddress, $"/slow/{name}").ToString(), primary = true } },
            })).Created();
            fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
            var running = await Library.WaitForDownloadAsync(admin, fileId, r =>
                r.Json.GetProperty("data").GetProperty("state").GetString() == "downloading" && r.Json.GetProperty("data").GetProperty("downloadedBytes").GetInt64() > 0);
            Assert.True(running.GetProperty("data").GetProperty("downloadedBytes").GetInt64() < bytes.Length);
        }
        finally
        {
            await first.DisposeAsync(); // stops mid-download
        }

        files.SlowBytesPerSecond = 4 * 1024 * 1024;
        await using var second = await TestHost.StartAsync(settings, database: db, adminKey: first.AdminKey);
        var after = (await Library.WaitForDownloadAsync(second.Client.With(adminToken, "op"), fileId, Library.Stored)).GetProperty("data");
        Assert.Equal(bytes.Length, after.GetProperty("downloadedBytes").GetInt64());
    }
}
