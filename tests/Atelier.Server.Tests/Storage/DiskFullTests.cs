using System.Diagnostics;
using System.Net;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Storage;

/// <summary>
/// A full storage disk: readiness says so, writes answer 503 <c>s_common_lockfail</c> with <c>Retry-After</c>, a sync
/// txt2img ends when its image cannot be stored, no partial temporary file is left, and those a stopped server left
/// are swept at start. The threshold is compared with the disk's real free space; the real ENOSPC comes from a tiny tmpfs.
/// </summary>
public class DiskFullTests
{
    private const string AbovePetabyte = "1125899906842624";

    private static string Objects(TestHost host) => Path.Combine(host.Database.Folder, "data", "objects");

    private static string[] TempFiles(string objects) =>
        Directory.Exists(Path.Combine(objects, ".tmp")) ? Directory.GetFiles(Path.Combine(objects, ".tmp")) : [];

    [Fact]
    public async Task UnderTheThreshold_ReadinessSaysNotReady_AndWritesAnswer503WithRetryAfter()
    {
        // The server first ran with room (its demo model is stored), then the disk filled: here, a threshold above what any
        // disk here has, so the check reads the real free space and finds it short.
        await using var db = await TestDatabase.CreateAsync();
        var first = await TestHost.StartAsync(database: db);
        await first.DisposeAsync();
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Storage:MinFreeBytes"] = AbovePetabyte }, database: db,
            adminKey: first.AdminKey);
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, "noop");

        var ready = await host.Client.GetAsync("/readyz");
        Assert.Equal("disk_full", ready.Error(ErrorCatalog.s_common_lockfail, 503).GetProperty("errCode").GetString());
        Assert.Equal("60", ready.Headers["Retry-After"]);

        // The sync wait ends when the job fails for want of space to keep its image, with the same answer.
        var app = world.AppOf(host);
        var sync = await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "a lighthouse", steps = 2, width = 64, height = 64 });
        var error = sync.Error(ErrorCatalog.s_common_lockfail, 503);
        Assert.Equal("disk_full", error.GetProperty("errCode").GetString());
        Assert.Contains("storage was full", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        Assert.Equal("60", sync.Headers["Retry-After"]);
        var failed = (await app.GetAsync("/api/v1/agents/default/jobs?state=failed")).Ok().GetProperty("items");
        Assert.Equal(ErrorCatalog.s_common_lockfail.Code, failed[0].GetProperty("errorCode").GetString());

        // A model upload through Atelier is refused before a byte is written.
        var admin = world.AdminOf(host);
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "big.safetensors", size = 4096 })).Created();
        using var put = Library.UploadPut(upload, new byte[4096]);
        var refused = await ApiResult.ReadAsync(await admin.Http.SendAsync(put));
        Assert.Equal("disk_full", refused.Error(ErrorCatalog.s_common_lockfail, 503).GetProperty("errCode").GetString());
        Assert.True(refused.Headers.ContainsKey("Retry-After"));

        Assert.Empty(TempFiles(Objects(host)));
        Assert.False(Directory.Exists(Path.Combine(Objects(host), "images")) && Directory.EnumerateFiles(Path.Combine(Objects(host), "images"), "*", SearchOption.AllDirectories).Any());
    }

    [Fact]
    public async Task ARealFullDisk_FailsTheWriteWithoutATempFileLeft_AndWorksAgainOnceThereIsRoom()
    {
        var mount = Path.Combine(Path.GetTempPath(), $"atelier-full-{Guid.NewGuid():N}");
        Directory.CreateDirectory(mount);
        Run("mount", $"-t tmpfs -o size=1m tmpfs {mount}");
        try
        {
            await using var host = await TestHost.StartAsync(new Dictionary<string, string>
            {
                ["Atelier:Storage:LocalPath"] = mount, ["Atelier:Storage:MinFreeBytes"] = "0",
            });
            var world = await Scenario.NewTenantAsync(host);
            await using var worker = await InProcessWorker.StartAsync(host, "noop");
            var app = world.AppOf(host);

            // Fill the file system to its last byte.
            var filler = Path.Combine(mount, "filler");
            await using (var fill = new FileStream(filler, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
            {
                var chunk = new byte[4096];
                try
                {
                    while (true)
                    {
                        fill.Write(chunk);
                    }
                }
                catch (IOException)
                {
                    // ENOSPC: full.
                }
            }

            var sync = await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "a lighthouse", steps = 2, width = 64, height = 64 });
            Assert.Equal("disk_full", sync.Error(ErrorCatalog.s_common_lockfail, 503).GetProperty("errCode").GetString());
            Assert.True(sync.Headers.ContainsKey("Retry-After"));
            Assert.Empty(TempFiles(mount));

            File.Delete(filler);
            var images = (await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "a lighthouse", steps = 2, width = 64, height = 64 }));
            Assert.Equal(HttpStatusCode.OK, images.Status);
            Assert.Equal(1, images.Json.GetProperty("images").GetArrayLength());
        }
        finally
        {
            Run("umount", $"-l {mount}");
            Directory.Delete(mount, recursive: true);
        }
    }

    [Fact]
    public async Task TempFilesLeftByAStoppedServer_AreSweptAtStart()
    {
        await using var db = await TestDatabase.CreateAsync();
        var temp = Directory.CreateDirectory(Path.Combine(db.Folder, "data", "objects", ".tmp")).FullName;
        var abandoned = Path.Combine(temp, "abandoned");
        await File.WriteAllBytesAsync(abandoned, new byte[1000]);
        File.SetLastWriteTimeUtc(abandoned, DateTime.UtcNow.AddHours(-2));
        // A file another process is writing right now is not touched.
        var live = Path.Combine(temp, "live");
        await File.WriteAllBytesAsync(live, new byte[10]);

        await using var host = await TestHost.StartAsync(database: db);
        Assert.Equal(HttpStatusCode.OK, (await host.Client.GetAsync("/readyz")).Status);
        Assert.False(File.Exists(abandoned));
        Assert.True(File.Exists(live));
    }

    private static void Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {args} failed ({p.ExitCode}): {error} (the test needs root to mount a tmpfs)");
    }
}
