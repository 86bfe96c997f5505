using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Images;

/// <summary>The generated-images library over HTTP, with a real worker (the no-op engine) making the images.</summary>
public class ImageLibraryTests
{
    private static async Task<(TestHost Host, TenantWorld World, InProcessWorker Worker)> StartAsync(bool fakeClock = false)
    {
        // Long periods for the other timers: moving a fake clock by a day runs every periodic timer once per period.
        var host = await TestHost.StartAsync(TestHost.LongTimerPeriods(new Dictionary<string, string> { ["Atelier:Images:RetentionSweepMinutes"] = "60" }), fakeClock);
        var world = await Scenario.NewTenantAsync(host);
        return (host, world, await InProcessWorker.StartAsync(host, "noop"));
    }

    private static async Task<string> MakeAsync(ApiClient client, int batch = 1, long seed = 5)
    {
        var task = (await client.PostAsync("/api/v1/predict/txt2img", new { prompt = "library", steps = 2, batch_size = batch, seed })).Ok(HttpStatusCode.Accepted)
            .GetProperty("taskId").GetString()!;
        var state = await Eventually.ValueAsync(async () => (await client.GetAsync($"/api/v1/tasks/{task}")).Ok().GetProperty("state").GetString(),
            st => st is "succeeded" or "failed", $"task {task} finished");
        Assert.Equal("succeeded", state);
        return task;
    }

    [Fact]
    public async Task EveryImageIsRecorded_ListFilters_SignedUrl()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        await using var __ = worker;
        var app = world.AppOf(host);
        var job = await MakeAsync(app, batch: 2, seed: 40);
        var listed = (await app.GetAsync($"/api/v1/images?jobId={job}")).Ok();
        Assert.Equal(2, listed.GetProperty("total").GetInt32());
        var first = listed.GetProperty("items").EnumerateArray().Single(i => i.GetProperty("index").GetInt32() == 0);
        Assert.Equal((40, 8, 8), (first.GetProperty("seed").GetInt64(), first.GetProperty("width").GetInt32(), first.GetProperty("height").GetInt32()));
        Assert.Equal(world.AppId, first.GetProperty("appId").GetString());
        Assert.Contains("Seed: 40", first.GetProperty("infotext").GetString(), StringComparison.Ordinal);
        var version = first.GetProperty("modelVersionId").GetString()!;
        Assert.Equal(2, (await app.GetAsync($"/api/v1/images?modelVersionId={version}")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(0, (await app.GetAsync("/api/v1/images?modelVersionId=mv_other")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(1, (await app.GetAsync("/api/v1/images?pageSize=1")).Ok().GetProperty("items").GetArrayLength());
        Assert.Equal(0, (await app.GetAsync($"/api/v1/images?from={DateTime.UtcNow.AddHours(1):O}")).Ok().GetProperty("total").GetInt32());

        var got = (await app.GetAsync($"/api/v1/images/{first.GetProperty("id").GetString()}")).Ok();
        var url = got.GetProperty("url").GetString()!;
        using var anonymous = await host.Client.Http.GetAsync(url);
        Assert.Equal("image/png", anonymous.Content.Headers.ContentType?.MediaType);
        var bytes = await anonymous.Content.ReadAsByteArrayAsync();
        Assert.Equal(first.GetProperty("size").GetInt64(), bytes.Length);
        Assert.Equal(first.GetProperty("sha256").GetString(), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
        var tampered = url[..^1] + (url[^1] == '0' ? '1' : '0');
        (await host.Client.GetAsync(tampered)).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        (await host.Client.GetAsync(url.Replace("expires=", "expires=1", StringComparison.Ordinal))).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        // Another tenant sees none of it.
        var other = await Scenario.NewTenantAsync(host);
        Assert.Equal(0, (await other.AppOf(host).GetAsync("/api/v1/images")).Ok().GetProperty("total").GetInt32());
        (await other.AppOf(host).GetAsync($"/api/v1/images/{first.GetProperty("id").GetString()}")).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }

    [Fact]
    public async Task Sessions_SeeTheirOwnImages()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        await using var __ = worker;
        var app = world.AppOf(host);
        var session = (await app.PostAsync("/api/v1/sessions", new { endUserId = "u-7", expiredAt = DateTime.UtcNow.AddHours(1) })).Created();
        var user = host.Client.With(session.GetProperty("credential").GetString());
        var sessionId = session.GetProperty("session").GetProperty("id").GetString();
        await MakeAsync(user);
        await MakeAsync(app);
        var mine = (await user.GetAsync("/api/v1/images")).Ok();
        Assert.Equal(1, mine.GetProperty("total").GetInt32());
        Assert.Equal(sessionId, mine.GetProperty("items")[0].GetProperty("sessionId").GetString());
        Assert.Equal(2, (await app.GetAsync("/api/v1/images")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(1, (await app.GetAsync($"/api/v1/images?sessionId={sessionId}")).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Delete_EmptyBatchRefused_StorageFailureKeepsTheRecord()
    {
        var (host, world, worker) = await StartAsync();
        await using var _ = host;
        await using var __ = worker;
        var admin = world.AdminOf(host);
        (await admin.PostAsync("/api/v1/images/delete", new { ids = Array.Empty<string>() })).Error(ErrorCatalog.b_generatedimage_imagesisempty, 400);
        (await admin.PostAsync("/api/v1/images/delete", new { })).Error(ErrorCatalog.b_generatedimage_imagesisempty, 400);

        await MakeAsync(world.AppOf(host), batch: 3);
        var items = (await admin.GetAsync("/api/v1/images")).Ok().GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList();
        Assert.Equal(3, items.Count);
        var result = (await admin.PostAsync("/api/v1/images/delete", new { ids = new[] { items[0], "img_never" } })).Ok();
        Assert.Equal(items[0], result.GetProperty("deleted")[0].GetString());
        Assert.Equal("img_never", result.GetProperty("notFound")[0].GetString());

        // The store cannot delete the second image's object (its path became a directory): the record is kept.
        var objects = Path.Combine(host.Database.Folder, "data", "objects");
        var second = (await admin.GetAsync($"/api/v1/images/{items[1]}")).Ok();
        var url = second.GetProperty("url").GetString()!;
        var sha = second.GetProperty("sha256").GetString();
        var job = second.GetProperty("jobId").GetString()!;
        var file = Directory.GetFiles(Path.Combine(objects, "images", world.TenantId, job), "*.png")
            .Single(f => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f))) == sha);
        File.Delete(file);
        Directory.CreateDirectory(file);
        File.WriteAllText(Path.Combine(file, "blocker"), "x");
        var error = (await admin.PostAsync("/api/v1/images/delete", new { ids = new[] { items[1], items[2] } })).Error(ErrorCatalog.b_generatedimage_deletefail, 502);
        Assert.Contains(items[1], error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        var left = (await admin.GetAsync("/api/v1/images")).Ok().GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()).ToList();
        Assert.Equal([items[1]], left);
        Assert.NotNull(url);
    }

    [Fact]
    public async Task Retention_DeletesImagesPastTheTenantsDays()
    {
        var (host, world, worker) = await StartAsync(fakeClock: true);
        await using var _ = host;
        await using var __ = worker;
        var admin = world.AdminOf(host);
        var config = (await admin.GetAsync("/api/v1/tenant/config")).Ok();
        (await admin.PutAsync("/api/v1/tenant/config", new
        {
            displayName = "ret", defaultRole = config.GetProperty("defaultRole").GetString(), maxConcurrentJobs = config.GetProperty("maxConcurrentJobs").GetInt32(),
            imageRetentionDays = 2, defaultSessionSeconds = 3600,
        })).Ok();
        await MakeAsync(world.AppOf(host), batch: 2);
        Assert.Equal(2, (await admin.GetAsync("/api/v1/images")).Ok().GetProperty("total").GetInt32());
        host.Clock!.Advance(TimeSpan.FromDays(1));
        host.Clock.Advance(TimeSpan.FromHours(1));
        // A younger image, a day old when the first two are two days old: the sweep that takes them leaves it.
        var young = await MakeAsync(world.AppOf(host), batch: 1);
        host.Clock.Advance(TimeSpan.FromDays(1));
        host.Clock.Advance(TimeSpan.FromHours(1));
        var left = await Eventually.ValueAsync(async () => (await admin.GetAsync("/api/v1/images")).Ok(), l => l.GetProperty("total").GetInt32() <= 1,
            "the sweeper deleted the images past two days");
        Assert.Equal(young, Assert.Single(left.GetProperty("items").EnumerateArray()).GetProperty("jobId").GetString());
        Assert.Single(Directory.GetFiles(Path.Combine(host.Database.Folder, "data", "objects", "images"), "*.png", SearchOption.AllDirectories));
    }
}
