using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// A completion that carries its small images itself (base64 <c>data</c>, within the lease's <c>inlineImageBytes</c>)
/// instead of uploading each first: stored as the upload of the image's place would have been, checked before anything
/// is stored, and refused whole when any part is wrong.
/// </summary>
public class InlineImageTests
{
    private static readonly byte[] Red = Atelier.Engine.Images.Png.Encode([.. Enumerable.Repeat(new byte[] { 220, 20, 20 }, 16).SelectMany(x => x)], 4, 4);
    private static readonly byte[] Blue = Atelier.Engine.Images.Png.Encode([.. Enumerable.Repeat(new byte[] { 20, 20, 220 }, 36).SelectMany(x => x)], 6, 6);

    private static object Carried(byte[] png, long seed = 7) => new { key = "", sha256 = "", size = 0, seed, infotext = "carried", data = Convert.ToBase64String(png) };

    private static object Carried(string data) => new { key = "", sha256 = "", size = 0, seed = 7, infotext = "carried", data };

    [Fact]
    public async Task Complete_CarryingOneImage_BesideAnUploadedOne_ServesBoth()
    {
        var (host, world, worker) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var id = await WorkerProtocolTests.SubmitAsync(host, world);
        var lease = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        Assert.Equal(256 * 1024, lease.GetProperty("inlineImageBytes").GetInt64());
        var uploaded = (await WorkerProtocol.PutImageAsync(worker, id, 1, 1, Blue)).Ok();

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new
        {
            attempt = 1,
            result = new
            {
                images = new object[]
                {
                    Carried(Red, seed: 11),
                    new { key = uploaded.GetProperty("key").GetString(), sha256 = uploaded.GetProperty("sha256").GetString(), size = Blue.Length, seed = 12, infotext = "uploaded" },
                },
                info = "{}",
            },
        })).Ok();

        var result = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}/result")).Ok();
        Assert.Equal("succeeded", result.GetProperty("state").GetString());
        var images = result.GetProperty("images");
        Assert.Equal(2, images.GetArrayLength());
        Assert.Equal(11, images[0].GetProperty("seed").GetInt64());
        Assert.Equal(Red, await FetchAsync(host, world, images[0]));
        Assert.Equal(Blue, await FetchAsync(host, world, images[1]));
        // Stored where the upload of place 0 would have put it, with the stored size; the body itself is not kept in the result.
        var store = host.Services.GetRequiredService<IObjectStore>();
        Assert.Equal(Red.Length, await store.SizeAsync(Atelier.Core.Jobs.WorkerService.ImageKey(world.TenantId, id, 1, 0), CancellationToken.None));
        using var scope = host.Services.CreateScope();
        var stored = await scope.ServiceProvider.GetRequiredService<Atelier.Data.AtelierDb>().Jobs.IgnoreQueryFilters()
            .Where(j => j.Id == id).Select(j => j.ResultJson).SingleAsync();
        Assert.Contains(Atelier.Core.Jobs.WorkerService.ImageKey(world.TenantId, id, 1, 0), stored, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(Red), stored, StringComparison.Ordinal);
        Assert.DoesNotContain("\"data\"", stored, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Complete_WithACarriedImageThatIsWrong_IsRefusedWhole_NothingStored_TheJobStillRuns()
    {
        // Room for one Blue carried, not two.
        var (host, world, worker) = await WorkerProtocolTests.StartAsync(settings: new Dictionary<string, string>
        {
            ["Atelier:Jobs:MaxImageBytes"] = "200", ["Atelier:Jobs:InlineImageBytes"] = (Blue.Length + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        await using var _ = host;
        var id = await WorkerProtocolTests.SubmitAsync(host, world);
        (await WorkerProtocol.LeaseAsync(worker)).Ok();
        var uploaded = (await WorkerProtocol.PutImageAsync(worker, id, 1, 0, Red)).Ok();
        var big = Atelier.Engine.Images.Png.Encode([.. Enumerable.Range(0, 32 * 32 * 3).Select(i => (byte)(i * 7919 % 251))], 32, 32);
        Assert.True(big.Length > 200);

        async Task<JsonElement> Refused(params object[] images) =>
            (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images, info = "{}" } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);

        // A good carried image first, then a bad one: the first is not stored either (all are checked before any is).
        var notBase64 = (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete",
                new { attempt = 1, result = new { images = new[] { Carried(Blue), Carried("not base64 at all!") }, info = "{}" } }))
            .Error(ErrorCatalog.p_common_needcorrectinputformat, 400);
        Assert.Contains("images[1].data", notBase64.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
        Assert.Contains("PNG", (await Refused(Carried(Blue), Carried("GIF89a-not-a-png"u8.ToArray()))).GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        Assert.Contains("larger than 200", (await Refused(Carried(big))).GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        // Two that each fit the lease's budget but not together.
        Assert.Contains($"at most {Blue.Length + 1} bytes", (await Refused(Carried(Blue), Carried(Blue))).GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        // Carried at place 0 while the upload of place 0 is named too: one key twice.
        await Refused(Carried(Blue), new { key = uploaded.GetProperty("key").GetString(), sha256 = "", size = 0, seed = 1, infotext = "" });

        var store = host.Services.GetRequiredService<IObjectStore>();
        Assert.Equal(Red.Length, await store.SizeAsync(Atelier.Core.Jobs.WorkerService.ImageKey(world.TenantId, id, 1, 0), CancellationToken.None));
        Assert.Null(await store.SizeAsync(Atelier.Core.Jobs.WorkerService.ImageKey(world.TenantId, id, 1, 1), CancellationToken.None));
        Assert.Equal("running", (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());

        // A stale attempt's carried image is refused before anything is stored.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 2, result = new { images = new[] { Carried(Blue) } } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409);
        Assert.Null(await store.SizeAsync(Atelier.Core.Jobs.WorkerService.ImageKey(world.TenantId, id, 2, 0), CancellationToken.None));

        // The right completion still goes through.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = new[] { Carried(Blue) }, info = "{}" } })).Ok();
        var result = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}/result")).Ok();
        Assert.Equal(Blue, await FetchAsync(host, world, result.GetProperty("images")[0]));
    }

    /// <summary>
    /// Turned off, the lease says nothing of it, a carried image is refused, and <c>atelier worker</c>'s loop uploads its
    /// images as before (its sync txt2img is answered, which a carried image would not have allowed).
    /// </summary>
    [Fact]
    public async Task TurnedOff_TheLeaseOffersNothing_AndTheWorkerUploads()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:InlineImageBytes"] = "0" });
        var world = await Scenario.NewTenantAsync(host);
        var probe = await WorkerProtocol.RegisterAsync(host, "probe");
        var id = await WorkerProtocolTests.SubmitAsync(host, world);
        var lease = (await WorkerProtocol.LeaseAsync(probe, "probe")).Ok();
        Assert.False(lease.TryGetProperty("inlineImageBytes", out var offered) && offered.ValueKind != JsonValueKind.Null);
        var refused = (await probe.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = new[] { Carried(Red) } } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("at most 0 bytes", refused.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
        (await probe.PostAsync($"/api/v1/worker/jobs/{id}/fail", new { attempt = 1, errorCode = "canceled", errorMessage = "probe" })).Ok();

        await using var worker = await InProcessWorker.StartAsync(host, "noop");
        var sync = await world.AppOf(host).PostAsync("/sdapi/v1/txt2img", new { prompt = "uploaded", steps = 1 });
        Assert.Equal(HttpStatusCode.OK, sync.Status);
        var png = Convert.FromBase64String(sync.Json.GetProperty("images")[0].GetString()!);
        Assert.Equal(Atelier.Core.Jobs.ImageHeaders.Png, Atelier.Core.Jobs.ImageHeaders.Read(png)?.Format);
    }

    /// <summary>
    /// A completion whose carried image leaves it over the server's JSON body limit is answered 413: <c>atelier worker</c>
    /// then uploads the image and completes again, and the caller gets the image (the job does not fail).
    /// </summary>
    [Fact]
    public async Task TooLargeWithTheImageInside_TheWorkerUploadsItInstead()
    {
        var noise = new byte[128 * 128 * 3];
        new Random(5).NextBytes(noise);
        var png = Atelier.Engine.Images.Png.Encode(noise, 128, 128);
        Assert.True(png.Length is > 32 * 1024 and < 256 * 1024);
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Server:MaxJsonBodyBytes"] = "32768" });
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, adapter: new OneImageEngine(png));
        var sync = await world.AppOf(host).PostAsync("/sdapi/v1/txt2img", new { prompt = "too large to carry", steps = 1 });
        Assert.Equal(HttpStatusCode.OK, sync.Status);
        Assert.Equal(png, Convert.FromBase64String(sync.Json.GetProperty("images")[0].GetString()!));
    }

    /// <summary>An engine whose every job is the one PNG it was given.</summary>
    private sealed class OneImageEngine(byte[] png) : Atelier.Worker.Adapters.IEngineAdapter
    {
        public string Name => "one-image";

        public Task<IReadOnlyList<Atelier.Worker.Adapters.EngineModel>> ListModelsAsync(CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<Atelier.Worker.Adapters.EngineModel>>([]);

        public Task<Atelier.Worker.Adapters.EngineResult> GenerateAsync(Atelier.Worker.Adapters.EngineJob job, IProgress<Atelier.Worker.Adapters.EngineProgress>? progress,
            CancellationToken ct) => Task.FromResult(new Atelier.Worker.Adapters.EngineResult([png], [1], "one-image", ["too large to carry"]));

        public void Dispose()
        {
        }
    }

    private static async Task<byte[]> FetchAsync(TestHost host, TenantWorld world, JsonElement image)
    {
        using var fetched = await host.Client.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, image.GetProperty("url").GetString())
        {
            Headers = { Authorization = new AuthenticationHeaderValue("Bearer", world.AppToken) },
        });
        Assert.Equal(HttpStatusCode.OK, fetched.StatusCode);
        return await fetched.Content.ReadAsByteArrayAsync();
    }
}
