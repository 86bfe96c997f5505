using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Worker.A1111;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// Model delivery (issue 15, item 5): the worker route that streams a leased job's model files, and real workers that
/// fetch a version they do not hold into their cache, verify it and run it.
/// </summary>
public class ModelDeliveryTests
{
    private static async Task<ApiResult> GetFileAsync(ApiClient worker, string jobId, string sha, int attempt, RangeHeaderValue? range = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{jobId}/files/{sha}?attempt={attempt}");
        req.Headers.Range = range;
        return await worker.SendRawAsync(req);
    }

    private static async Task<byte[]> BytesAsync(ApiClient worker, string jobId, string sha, int attempt, RangeHeaderValue? range = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{jobId}/files/{sha}?attempt={attempt}");
        req.Headers.Range = range;
        using var resp = await worker.Http.SendAsync(worker.Authorize(req));
        Assert.True(resp.StatusCode is HttpStatusCode.OK or HttpStatusCode.PartialContent, $"{(int)resp.StatusCode}: {await resp.Content.ReadAsStringAsync()}");
        Assert.Equal(range is null ? HttpStatusCode.OK : HttpStatusCode.PartialContent, resp.StatusCode);
        Assert.Equal($"\"{sha}\"", resp.Headers.ETag?.Tag);
        return await resp.Content.ReadAsByteArrayAsync();
    }

    [Fact]
    public async Task FileRoute_ServesTheLeasedVersionsFiles_OnlyToTheLeaseHolder()
    {
        var (host, world, worker) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var model = await DeliveredModels.OnnxFolderAsync(host, world, "fox-folder");
        var elsewhere = await DeliveredModels.RegisterAsync(host, world, "other", "checkpoint",
            new Dictionary<string, byte[]> { ["other.safetensors"] = ModelFiles.Checkpoint() }, "other.safetensors");
        var id = await WorkerProtocolTests.SubmitAsync(host, world, input: DeliveredModels.Txt2Img(model.Name));

        var lease = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        Assert.Equal(id, lease.GetProperty("id").GetString());
        var leased = lease.GetProperty("model");
        Assert.Equal("onnx", leased.GetProperty("type").GetString());
        Assert.Equal("sha256:" + model.PrimarySha256, leased.GetProperty("key").GetString());
        var files = leased.GetProperty("files").EnumerateArray().ToDictionary(f => f.GetProperty("path").GetString()!);
        Assert.Equal(model.Files.Keys.Order(StringComparer.Ordinal), files.Keys.Order(StringComparer.Ordinal));
        foreach (var (path, bytes) in model.Files)
        {
            Assert.Equal(RegisteredModel.Sha(bytes), files[path].GetProperty("sha256").GetString());
            Assert.Equal(bytes.Length, files[path].GetProperty("size").GetInt64());
            Assert.Equal(path == "unet/model.onnx", files[path].GetProperty("primary").GetBoolean());
        }

        // The lease holder gets the bytes, whole or from an offset (a resumed fetch).
        var vocab = model.Files["tokenizer/vocab.json"];
        var sha = RegisteredModel.Sha(vocab);
        Assert.Equal(vocab, await BytesAsync(worker, id, sha, 1));
        Assert.Equal(vocab[1000..], await BytesAsync(worker, id, sha, 1, new RangeHeaderValue(1000, null)));

        // Another worker key, another attempt: the attempt is not theirs (the heartbeat's fence). Never the bytes.
        var other = await WorkerProtocol.RegisterAsync(host, "w-other");
        Assert.Equal(ErrCodes.StaleAttempt, (await GetFileAsync(other, id, sha, 1)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        Assert.Equal(ErrCodes.StaleAttempt, (await GetFileAsync(worker, id, sha, 2)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        (await GetFileAsync(worker, id, sha, 0)).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // A file of the tenant that is not of this job's version, and one that is nobody's: refused before the store is read.
        var notMine = (await GetFileAsync(worker, id, elsewhere.PrimarySha256, 1)).Error(ErrorCatalog.p_common_inputinvalid, 404);
        Assert.Equal(ErrCodes.NotAJobFile, notMine.GetProperty("errCode").GetString());
        Assert.Equal(ErrCodes.NotAJobFile, (await GetFileAsync(worker, id, new string('0', 64), 1)).Error(ErrorCatalog.p_common_inputinvalid, 404).GetProperty("errCode").GetString());
        (await GetFileAsync(worker, id, "../../etc/passwd", 1)).AssertClientErrorEnvelope();
        (await GetFileAsync(worker, id, "abc", 1)).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // Not a worker key at all.
        (await GetFileAsync(world.AdminOf(host), id, sha, 1)).Error(ErrorCatalog.b_session_tokenforbidden, 403);

        // Once the job is finished, the lease is gone and so are the files.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();
        Assert.Equal(ErrCodes.StaleAttempt, (await GetFileAsync(worker, id, sha, 1)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task Heartbeat_WithTheDownloadStage_IsShownOnTheJob()
    {
        var (host, world, worker) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var model = await DeliveredModels.OnnxFolderAsync(host, world, "progress-folder");
        var id = await WorkerProtocolTests.SubmitAsync(host, world, input: DeliveredModels.Txt2Img(model.Name));
        Assert.Equal(id, (await WorkerProtocol.LeaseAsync(worker)).Ok().GetProperty("id").GetString());

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1, stage = "downloading", bytesDone = 4096, bytesTotal = 20000 })).Ok();
        var progress = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("progress");
        Assert.Equal("downloading", progress.GetProperty("stage").GetString());
        Assert.Equal(4096, progress.GetProperty("bytesDone").GetInt64());
        Assert.Equal(20000, progress.GetProperty("bytesTotal").GetInt64());

        // Then the engine's steps, with the model in place.
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1, stage = "generating", bytesDone = 20000, bytesTotal = 20000, step = 1, steps = 2, fraction = 0.5 })).Ok();
        progress = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("progress");
        Assert.Equal("generating", progress.GetProperty("stage").GetString());
        Assert.Equal(0.5, progress.GetProperty("fraction").GetDouble());
        Assert.Equal(1, progress.GetProperty("step").GetInt32());

        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1, stage = "sleeping" })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1, stage = "downloading", bytesDone = 5, bytesTotal = 4 })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await worker.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 2, stage = "downloading", bytesDone = 1, bytesTotal = 4 })).Error(ErrorCatalog.p_common_inputinvalid, 409);
    }

    [Fact]
    public async Task OnnxFolderModel_IsFetchedIntoTheCache_GeneratesAnImage_AndTheNextJobHitsTheCache()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var model = await DeliveredModels.OnnxFolderAsync(host, world, "fetched-folder", prefix: "v1/");
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");
        var app = world.AppOf(host);

        var first = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(model.Name))).Json;
        Assert.Equal(1, first.GetProperty("images").GetArrayLength());
        var info = JsonDocument.Parse(first.GetProperty("info").GetString()!).RootElement;
        Assert.Equal(model.PrimarySha256[..10], info.GetProperty("sd_model_hash").GetString());
        var cache = worker.Host.Cache!;
        Assert.Equal(model.DistinctFiles, cache.Downloads);
        Assert.Equal(model.DistinctBytes, cache.UsedBytes);
        // The job says what was fetched (the worker reports it as soon as the model is in place).
        var job = (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("items")[0];
        Assert.Equal("succeeded", job.GetProperty("state").GetString());
        Assert.Equal("generating", job.GetProperty("progress").GetProperty("stage").GetString());
        Assert.Equal(model.DistinctBytes, job.GetProperty("progress").GetProperty("bytesTotal").GetInt64());
        Assert.Equal(model.DistinctBytes, job.GetProperty("progress").GetProperty("bytesDone").GetInt64());

        var second = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(model.Name))).Json;
        Assert.Equal(first.GetProperty("images")[0].GetString(), second.GetProperty("images")[0].GetString());
        Assert.Equal(model.DistinctFiles, cache.Downloads);
        Assert.Equal(model.DistinctFiles, cache.Hits);
    }

    [Fact]
    public async Task CorruptedCachedFile_IsFetchedAgain_NeverLoaded_AndTheJobSucceeds()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var model = await DeliveredModels.OnnxFolderAsync(host, world, "corrupted-folder");
        var app = world.AppOf(host);
        var folder = Path.Combine(host.Database.Folder, "shared-cache");
        string? before;
        string blob;
        await using (var first = await InProcessWorker.StartAsync(host, "builtin", id: "first", modelCache: folder))
        {
            before = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(model.Name))).Json.GetProperty("images")[0].GetString();
            blob = first.Host.Cache!.BlobPath(model.PrimarySha256);
        }

        // The first worker's last lease request may still be parked on the server: the next job is the second worker's.
        await InProcessWorker.RevokeEveryKeyAsync(host);

        // The UNet's bytes change on disk (same length) while no worker runs: what an engine would load is no longer the model.
        var bytes = File.ReadAllBytes(blob);
        var written = File.GetLastWriteTimeUtc(blob);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(blob, bytes);
        File.SetLastWriteTimeUtc(blob, written.AddSeconds(1));

        // A new worker process on the same cache (nothing loaded in memory): it finds the change, fetches the file again and
        // loads the real model, so the same seed makes the same picture.
        await using var second = await InProcessWorker.StartAsync(host, "builtin", id: "second", modelCache: folder);
        var after = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(model.Name))).Json.GetProperty("images")[0].GetString();

        var cache = second.Host.Cache!;
        Assert.Equal(1, cache.Rejected);
        Assert.Equal(1, cache.Downloads);
        Assert.Equal(model.DistinctFiles - 1, cache.Hits);
        Assert.Equal(model.PrimarySha256, RegisteredModel.Sha(File.ReadAllBytes(blob)));
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task VersionTheEngineCannotRun_FailsAtOnce_WithModelFileTypeNotSupport()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var checkpoint = await DeliveredModels.RegisterAsync(host, world, "dreamshaper", "checkpoint",
            new Dictionary<string, byte[]> { ["dreamshaper.safetensors"] = ModelFiles.Checkpoint() }, "dreamshaper.safetensors");
        await using var worker = await InProcessWorker.StartAsync(host, "builtin");
        var app = world.AppOf(host);

        var error = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(checkpoint.Name))).Error(ErrorCatalog.p_model_modelfiletypenotsupport, 400);
        var message = error.GetProperty("errMessage").GetString()!;
        Assert.StartsWith("onnx (the built-in engine runs diffusers ONNX model folders", message, StringComparison.Ordinal);
        Assert.Contains("dreamshaper v1 is a checkpoint", message, StringComparison.Ordinal);
        var job = (await app.GetAsync("/api/v1/agents/default/jobs")).Ok().GetProperty("items")[0];
        Assert.Equal("failed", job.GetProperty("state").GetString());
        Assert.Equal(1, job.GetProperty("attempt").GetInt32()); // once: no lease ran out, no retry
        Assert.Equal("p_model_modelfiletypenotsupport", job.GetProperty("errorCode").GetString());
        Assert.Equal(0, worker.Host.Cache!.Downloads); // nothing was fetched for it

        // An ONNX version that is not a whole folder is refused the same way, saying what it lacks.
        var partial = await DeliveredModels.RegisterAsync(host, world, "half", "onnx",
            new Dictionary<string, byte[]> { ["unet/model.onnx"] = UnetOnly() }, "unet/model.onnx");
        var lacking = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(partial.Name))).Error(ErrorCatalog.p_model_modelfiletypenotsupport, 400);
        Assert.Contains("it has no model_index.json", lacking.GetProperty("errMessage").GetString(), StringComparison.Ordinal);

        static byte[] UnetOnly()
        {
            var temp = Directory.CreateTempSubdirectory("atelier-unet-").FullName;
            try
            {
                return File.ReadAllBytes(Path.Combine(Atelier.Engine.Onnx.DemoModel.Write(temp, "half-unet"), "unet", "model.onnx"));
            }
            finally
            {
                Directory.Delete(temp, recursive: true);
            }
        }
    }

    [Fact]
    public async Task A1111Engine_GetsTheModelInItsModelsFolder_AndRefreshesCheckpoints()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var models = Path.Combine(host.Database.Folder, "a1111-models");
        await using var engine = await StandInAsync(models);
        var folder = await DeliveredModels.OnnxFolderAsync(host, world, "a1111-folder");
        await using var worker = await InProcessWorker.StartAsync(host, $"a1111={engine.Address}", a1111Models: models);
        var app = world.AppOf(host);
        Assert.DoesNotContain(await EngineModelsAsync(engine), m => m.Sha256 == folder.PrimarySha256);

        var answer = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(folder.Name))).Json;
        Assert.Equal(1, answer.GetProperty("images").GetArrayLength());
        var installed = Path.Combine(models, $"a1111-folder-{folder.PrimarySha256[..10]}");
        foreach (var (path, bytes) in folder.Files)
        {
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(installed, path)));
        }

        // The engine lists it: it rescanned its folder on refresh-checkpoints (it scans nowhere else after its start).
        Assert.Contains(await EngineModelsAsync(engine), m => m.Sha256 == folder.PrimarySha256 && m.Name == Path.GetFileName(installed));

        // A checkpoint's primary file is copied in the same way; this stand-in runs ONNX folders only, so it does not list
        // it after the refresh, and the job says so.
        var bytesOfCheckpoint = ModelFiles.Checkpoint();
        var checkpoint = await DeliveredModels.RegisterAsync(host, world, "Dream Shaper", "checkpoint",
            new Dictionary<string, byte[]> { ["dreamshaper.safetensors"] = bytesOfCheckpoint }, "dreamshaper.safetensors");
        var error = (await app.PostAsync("/sdapi/v1/txt2img", DeliveredModels.Txt2Img(checkpoint.Name))).Error(ErrorCatalog.b_predict_predictfail);
        var file = Path.Combine(models, $"Dream-Shaper-{checkpoint.PrimarySha256[..10]}.safetensors");
        Assert.Equal(bytesOfCheckpoint, File.ReadAllBytes(file));
        Assert.Contains("after refresh-checkpoints", error.GetProperty("errMessage").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SameBytesInTwoTenants_AreOneHotModel_ToASharedWorker()
    {
        var (host, first, worker) = await WorkerProtocolTests.StartAsync(fakeClock: true);
        await using var _ = host;
        var second = await Scenario.NewTenantAsync(host);
        var third = await Scenario.NewTenantAsync(host);
        var unet = new Dictionary<string, byte[]> { ["model.onnx"] = await File.ReadAllBytesAsync(await UnetAsync("shared")) };
        var a = await DeliveredModels.RegisterAsync(host, first, "mine", "onnx", unet, "model.onnx");
        var b = await DeliveredModels.RegisterAsync(host, second, "theirs", "onnx", unet, "model.onnx");
        var c = await DeliveredModels.RegisterAsync(host, third, "different", "onnx",
            new Dictionary<string, byte[]> { ["model.onnx"] = await File.ReadAllBytesAsync(await UnetAsync("different")) }, "model.onnx");
        Assert.NotEqual(a.VersionId, b.VersionId);

        // The worker runs the first tenant's model, and holds it.
        await WorkerProtocolTests.SubmitAsync(host, first, input: DeliveredModels.Txt2Img(a.Name));
        var done = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        var key = done.GetProperty("model").GetProperty("key").GetString();
        Assert.Equal("sha256:" + a.PrimarySha256, key);
        (await worker.PostAsync($"/api/v1/worker/jobs/{done.GetProperty("id").GetString()}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } })).Ok();

        // An older job of another model, then the second tenant's job on the same bytes: the slot that holds them takes that one first.
        var older = await WorkerProtocolTests.SubmitAsync(host, third, input: DeliveredModels.Txt2Img(c.Name));
        host.Clock!.Advance(TimeSpan.FromMilliseconds(10));
        var same = await WorkerProtocolTests.SubmitAsync(host, second, input: DeliveredModels.Txt2Img(b.Name));
        var hot = (await WorkerProtocol.LeaseAsync(worker, hot: [key])).Ok();
        Assert.Equal(same, hot.GetProperty("id").GetString());
        Assert.Equal(b.VersionId, hot.GetProperty("model").GetProperty("versionId").GetString());
        Assert.Equal(key, hot.GetProperty("model").GetProperty("key").GetString());
        Assert.Equal(older, (await WorkerProtocol.LeaseAsync(worker, hot: [key])).Ok().GetProperty("id").GetString());

        // A worker that still reports the version id it ran (before jobs were keyed by content) is served the same way.
        host.Clock.Advance(TimeSpan.FromMilliseconds(10));
        var older2 = await WorkerProtocolTests.SubmitAsync(host, third, input: DeliveredModels.Txt2Img(c.Name));
        host.Clock.Advance(TimeSpan.FromMilliseconds(10));
        var same2 = await WorkerProtocolTests.SubmitAsync(host, second, input: DeliveredModels.Txt2Img(b.Name));
        Assert.Equal(same2, (await WorkerProtocol.LeaseAsync(worker, hot: [a.VersionId])).Ok().GetProperty("id").GetString());
        Assert.Equal(older2, (await WorkerProtocol.LeaseAsync(worker, hot: [a.VersionId])).Ok().GetProperty("id").GetString());

        async Task<string> UnetAsync(string name)
        {
            var temp = Path.Combine(host.Database.Folder, "unets");
            return Path.Combine(Atelier.Engine.Onnx.DemoModel.Write(temp, name), "unet", "model.onnx");
        }
    }

    [Fact]
    public async Task OnnxAliases_MayHaveFolders_OtherTypesMayNot_AndNoPathEscapes()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var onnx = await Library.ModelAsync(admin, "onnx");
        var version = (await admin.PostAsync($"/api/v1/models/{onnx}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
        var json = (await Library.UploadAsync(host, admin, "onnx", "model_index.json", "{\"_class_name\":\"x\"}"u8.ToArray())).GetProperty("id").GetString();
        (await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = "v2/scheduler/scheduler_config.json", uploadId = json })).Created();
        foreach (var bad in new[] { "/abs.json", "a/../b.json", "a//b.json", "./a.json", "a\\b.json", "a/ b.json" })
        {
            (await admin.PostAsync($"/api/v1/model-versions/{version}/files", new { aliasName = bad, uploadId = json })).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        var lora = await Library.ModelAsync(admin, "lora");
        var loraVersion = (await admin.PostAsync($"/api/v1/models/{lora}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
        var file = (await Library.UploadAsync(host, admin, "lora", "style.safetensors", ModelFiles.Lora("x"))).GetProperty("id").GetString();
        var refused = (await admin.PostAsync($"/api/v1/model-versions/{loraVersion}/files", new { aliasName = "styles/style.safetensors", uploadId = file }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Contains("bare file name", refused.GetProperty("subErrMessage").GetString(), StringComparison.Ordinal);
    }

    private static async Task<IReadOnlyList<(string Name, string? Sha256)>> EngineModelsAsync(StandIn engine)
    {
        using var http = new HttpClient();
        var list = JsonDocument.Parse(await http.GetStringAsync(new Uri(engine.Address, "sdapi/v1/sd-models"))).RootElement;
        return [.. list.EnumerateArray().Select(m => (m.GetProperty("model_name").GetString()!, m.GetProperty("sha256").GetString()))];
    }

    /// <summary><c>atelier engine</c> (the AUTOMATIC1111 stand-in) on a loopback port over <paramref name="models"/>.</summary>
    private static async Task<StandIn> StandInAsync(string models)
    {
        var app = EngineServer.Build(["--Atelier:Engine:Urls=http://127.0.0.1:0", $"--Atelier:Engine:ModelsDirectory={models}", "--Logging:LogLevel:Default=Warning"]);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new StandIn(app, new Uri(address.EndsWith('/') ? address : address + "/"));
    }

    private sealed record StandIn(WebApplication App, Uri Address) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
