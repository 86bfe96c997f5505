using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Worker.Adapters;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// What a worker key may do, and no more (issue 12, items 1 to 3): the image keys of a completion are the server's own,
/// a job is answered only by the key that leased it, keys are listed and revoked, a refused worker stops, and images
/// larger than the JSON body limit go through.
/// </summary>
public partial class WorkerTrustTests
{
    private static async Task<(string Id, JsonElement Image)> LeaseAndUploadAsync(ApiClient worker, string workerId, byte[] png, int index = 0)
    {
        var leased = (await WorkerProtocol.LeaseAsync(worker, workerId)).Ok();
        var id = leased.GetProperty("id").GetString()!;
        var image = (await WorkerProtocol.PutImageAsync(worker, id, 1, index, png)).Ok();
        return (id, image);
    }

    private static object Completion(params string[] keys) => new
    {
        attempt = 1,
        result = new { images = keys.Select(k => new { key = k, sha256 = new string('0', 64), size = 1, seed = 1, infotext = "" }).ToArray(), info = "{}" },
    };

    private static async Task<HttpResponseMessage> GetImageAsync(TestHost host, string token, string url)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, url) { Headers = { Authorization = new AuthenticationHeaderValue("Bearer", token) } };
        return await host.Client.Http.SendAsync(req);
    }

    [Fact]
    public async Task Complete_WithAKeyOutsideItsUploads_IsRefused_AndTheOtherTenantsImageIsUntouched()
    {
        var (host, a, worker) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var b = await Scenario.NewTenantAsync(host);
        var png = Atelier.Engine.Images.Png.Encode(new byte[4 * 4 * 3], 4, 4);

        // Tenant B's job completes with its image.
        await WorkerProtocolTests.SubmitAsync(host, b, "job-b");
        var (jobB, imageB) = await LeaseAndUploadAsync(worker, "w1", png);
        var keyB = imageB.GetProperty("key").GetString()!;
        (await worker.PostAsync($"/api/v1/worker/jobs/{jobB}/complete", Completion(keyB))).Ok();

        // Tenant A's job: the worker uploads its own image, then names B's object through its own key's path.
        await WorkerProtocolTests.SubmitAsync(host, a, "job-a");
        var (jobA, imageA) = await LeaseAndUploadAsync(worker, "w1", png);
        var keyA = imageA.GetProperty("key").GetString()!;
        var hostile = new[]
        {
            $"{keyA}/../../../../{keyB}",
            keyB,
            $"images/{a.TenantId}/{jobA}/1-1.png", // a key this attempt could have had, but never uploaded
            $"images/{a.TenantId}/{jobA}/2-0.png", // another attempt's
            $"images/{a.TenantId}/{jobA}/1-00.png",
            $"images/{a.TenantId}/{jobA}//1-0.png",
            $"images/{a.TenantId}/{jobA}/1-0.png\u0000",
        };
        foreach (var key in hostile)
        {
            (await worker.PostAsync($"/api/v1/worker/jobs/{jobA}/complete", Completion(key))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        (await worker.PostAsync($"/api/v1/worker/jobs/{jobA}/complete", Completion(keyA, keyA))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal("running", (await a.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{jobA}")).Ok().GetProperty("state").GetString());

        // B's image is B's alone, and still there.
        using (var own = await GetImageAsync(host, b.AppToken, $"/api/v1/tasks/{jobB}/images/0"))
        {
            Assert.Equal(HttpStatusCode.OK, own.StatusCode);
            Assert.Equal(png, await own.Content.ReadAsByteArrayAsync());
        }

        // The honest completion works and gives A its own image.
        (await worker.PostAsync($"/api/v1/worker/jobs/{jobA}/complete", Completion(keyA))).Ok();
        var listed = (await a.AppOf(host).GetAsync("/api/v1/images")).Ok().GetProperty("items");
        Assert.Equal(keyA.Split('/')[2], Assert.Single(listed.EnumerateArray()).GetProperty("jobId").GetString());
    }

    [Theory]
    [InlineData("images/t/j/1-0.png/../../x/y.png")]
    [InlineData("../outside.png")]
    [InlineData("/absolute.png")]
    [InlineData("images//double.png")]
    [InlineData("images\\back.png")]
    [InlineData("images/./dot.png")]
    [InlineData("images/ctl\u0007.png")]
    [InlineData("images/trailing/")]
    [InlineData("")]
    public async Task ObjectStore_RefusesKeysThatCouldNameAnotherObject_OnEveryBackend(string key)
    {
        var folder = Directory.CreateTempSubdirectory("atelier-keys-").FullName;
        try
        {
            var stores = new List<Atelier.Storage.IObjectStore> { new Atelier.Storage.LocalObjectStore(folder) };
            if (Environment.GetEnvironmentVariable("ATELIER_TEST_S3") is { Length: > 0 } s3)
            {
                stores.Add(new Atelier.Storage.S3ObjectStore(new Atelier.Storage.StorageOptions
                {
                    Provider = "s3", S3ServiceUrl = s3, S3AccessKey = "S3RVER", S3SecretKey = "S3RVER", S3Bucket = "atelier",
                }));
            }

            foreach (var store in stores)
            {
                using var body = new MemoryStream([1, 2, 3]);
                await Assert.ThrowsAsync<Atelier.Storage.InvalidObjectKeyException>(() => store.PutAsync(key, body, 3, CancellationToken.None));
                await Assert.ThrowsAsync<Atelier.Storage.InvalidObjectKeyException>(() => store.OpenReadAsync(key, CancellationToken.None));
                await Assert.ThrowsAsync<Atelier.Storage.InvalidObjectKeyException>(() => store.DeleteAsync(key, CancellationToken.None));
                await Assert.ThrowsAsync<Atelier.Storage.InvalidObjectKeyException>(() => store.SizeAsync(key, CancellationToken.None));
                await Assert.ThrowsAsync<Atelier.Storage.InvalidObjectKeyException>(() => store.CopyAsync("images/ok.png", key, CancellationToken.None));
            }

            Assert.Empty(Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AnotherWorkerKey_CannotHeartbeatUploadCompleteOrFail_AJobItDidNotLease()
    {
        var (host, world, owner) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var intruder = await WorkerProtocol.RegisterAsync(host, "w-intruder");
        var id = await WorkerProtocolTests.SubmitAsync(host, world);
        Assert.Equal(id, (await WorkerProtocol.LeaseAsync(owner)).Ok().GetProperty("id").GetString());
        var png = Atelier.Engine.Images.Png.Encode(new byte[4 * 4 * 3], 4, 4);

        Assert.Equal("stale_attempt", (await intruder.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        (await WorkerProtocol.PutImageAsync(intruder, id, 1, 0, png)).Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await intruder.PostAsync($"/api/v1/worker/jobs/{id}/fail", new { attempt = 1, errorCode = ErrorCatalog.b_agent_contentnotsafe.Code, errorMessage = "forged" }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409);
        (await intruder.PostAsync($"/api/v1/worker/jobs/{id}/complete", new { attempt = 1, result = new { images = Array.Empty<object>() } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409);

        var job = (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok();
        Assert.Equal("running", job.GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Null, job.GetProperty("errorCode").ValueKind);

        // The key that leased it still owns it.
        var image = (await WorkerProtocol.PutImageAsync(owner, id, 1, 0, png)).Ok();
        (await owner.PostAsync($"/api/v1/worker/jobs/{id}/complete", Completion(image.GetProperty("key").GetString()!))).Ok();
        Assert.Equal("succeeded", (await world.AppOf(host).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());
    }

    [Fact]
    public async Task RevokedWorkerKey_IsRefusedAtOnce_OnEveryReplica_AndItsJobGoesBackToTheQueue()
    {
        // Two replicas on one database: the key is revoked on A and refused by B on the very next request.
        await using var a = await TestHost.StartAsync();
        await using var b = await TestHost.StartAsync(database: a.Database, adminKey: a.AdminKey);
        var world = await Scenario.NewTenantAsync(a);
        var issued = (await a.Admin().PostAsync("/api/v1/platform/worker-keys", new { name = "gpu fleet east" })).Created();
        var keyId = issued.GetProperty("id").GetString()!;
        var onB = b.Client.With(issued.GetProperty("secret").GetString()!);
        (await onB.PostAsync("/api/v1/worker/register", new { workerId = "east-1", engine = "noop", slots = 1 })).Ok();
        var id = await WorkerProtocolTests.SubmitAsync(a, world);
        Assert.Equal(id, (await WorkerProtocol.LeaseAsync(onB, "east-1")).Ok().GetProperty("id").GetString());
        (await onB.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 })).Ok();

        var listed = (await a.Admin().GetAsync("/api/v1/platform/worker-keys")).Ok().EnumerateArray().Single(k => k.GetProperty("id").GetString() == keyId);
        Assert.Equal("gpu fleet east", listed.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.String, listed.GetProperty("lastUsedAt").ValueKind);
        Assert.Equal(1, listed.GetProperty("workers").GetInt32());
        Assert.False(listed.TryGetProperty("secret", out _));
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("revokedAt").ValueKind);

        var revoked = (await a.Admin().PostAsync($"/api/v1/platform/worker-keys/{keyId}/revoke")).Ok();
        Assert.Equal(JsonValueKind.String, revoked.GetProperty("revokedAt").ValueKind);

        // B had just authenticated the key: it refuses it all the same.
        Assert.Equal("key_revoked", (await onB.PostAsync($"/api/v1/worker/jobs/{id}/heartbeat", new { attempt = 1 }))
            .Error(ErrorCatalog.b_session_tokennotvalid, 401).GetProperty("errCode").GetString());
        (await WorkerProtocol.LeaseAsync(onB, "east-1")).Error(ErrorCatalog.b_session_tokennotvalid, 401);

        // Its running job did not wait for the lease to run out: it is queued again, and another key takes it as attempt 2.
        Assert.Equal("queued", (await world.AppOf(a).GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());
        var other = await WorkerProtocol.RegisterAsync(b, "west-1");
        var again = (await WorkerProtocol.LeaseAsync(other, "west-1")).Ok();
        Assert.Equal((id, 2), (again.GetProperty("id").GetString(), again.GetProperty("attempt").GetInt32()));

        // Revoking is for worker keys only, and answers 404 for anything else.
        (await a.Admin().PostAsync("/api/v1/platform/worker-keys/wk_nope/revoke")).Error(ErrorCatalog.p_common_inputinvalid, 404);
        (await world.AdminOf(a).GetAsync("/api/v1/platform/worker-keys")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    [Fact]
    public async Task OneWorkerKey_CannotRegisterUnboundedWorkerIds()
    {
        var (host, _, worker) = await WorkerProtocolTests.StartAsync(settings: new Dictionary<string, string> { ["Atelier:Jobs:MaxWorkersPerKey"] = "3" });
        await using var __ = host;
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "w2", engine = "noop", slots = 1 })).Ok();
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "w3", engine = "noop", slots = 1 })).Ok();
        Assert.Equal("too_many_workers", (await worker.PostAsync("/api/v1/worker/register", new { workerId = "w4", engine = "noop", slots = 1 }))
            .Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        // Registering again after a restart is not a new id.
        (await worker.PostAsync("/api/v1/worker/register", new { workerId = "w3", engine = "noop", slots = 2 })).Ok();
    }

    /// <summary>An engine of this test's own: each image is an incompressible PNG of the requested size.</summary>
    private sealed class NoiseEngine : IEngineAdapter
    {
        public string Name => "noise";

        public Task<IReadOnlyList<EngineModel>> ListModelsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<EngineModel>>([]);

        public Task<EngineResult> GenerateAsync(EngineJob job, IProgress<EngineProgress>? progress, CancellationToken ct)
        {
            var rgb = new byte[job.Width * job.Height * 3];
            new Random(7).NextBytes(rgb);
            var png = Atelier.Engine.Images.Png.Encode(rgb, job.Width, job.Height);
            return Task.FromResult(new EngineResult([png], [7], "noise", [$"{job.Prompt}\nSeed: 7"]));
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task ImageLargerThanTheJsonBodyLimit_GoesThrough_ToTheA1111AndTheAsyncApi()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, adapter: new NoiseEngine());
        var app = world.AppOf(host);

        // 1024 x 1024 random pixels: a 3 MiB PNG, three times the JSON body limit.
        var sync = (await app.PostAsync("/sdapi/v1/txt2img", new { prompt = "noise", width = 1024, height = 1024, steps = 1 })).Json;
        var fromA1111 = Convert.FromBase64String(sync.GetProperty("images")[0].GetString()!);
        Assert.True(fromA1111.Length > 3_000_000, $"{fromA1111.Length} bytes");
        Assert.Equal((1024, 1024), Dimensions(fromA1111));

        var task = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "noise", width = 1024, height = 1024, steps = 1 })).Ok(HttpStatusCode.Accepted);
        var taskId = task.GetProperty("taskId").GetString()!;
        await Eventually.UntilAsync(async () => (await app.GetAsync($"/api/v1/tasks/{taskId}")).Ok().GetProperty("state").GetString() == "succeeded",
            "the async task succeeded");
        using var fetched = await GetImageAsync(host, world.AppToken, $"/api/v1/tasks/{taskId}/images/0");
        Assert.Equal(HttpStatusCode.OK, fetched.StatusCode);
        var fromTask = await fetched.Content.ReadAsByteArrayAsync();
        Assert.Equal(SHA256.HashData(fromA1111), SHA256.HashData(fromTask)); // same seed, same pixels
    }

    [Fact]
    public async Task ImageOverTheConfiguredMaximum_FailsTheJob_WithAMessageForTheClient_NotTheWorkerProtocol()
    {
        await using var host = await TestHost.StartAsync(new Dictionary<string, string> { ["Atelier:Jobs:MaxImageBytes"] = "1000000" });
        var world = await Scenario.NewTenantAsync(host);
        await using var worker = await InProcessWorker.StartAsync(host, adapter: new NoiseEngine());
        var app = world.AppOf(host);
        var id = (await app.PostAsync("/api/v1/predict/txt2img", new { prompt = "noise", width = 1024, height = 1024, steps = 1 })).Ok(HttpStatusCode.Accepted)
            .GetProperty("taskId").GetString()!;
        var job = await Eventually.ValueAsync(async () => (await app.GetAsync($"/api/v1/tasks/{id}")).Ok(),
            j => j.GetProperty("state").GetString() == "failed", "the task failed");
        var message = job.GetProperty("errorMessage").GetString()!;
        Assert.StartsWith("storing a generated image failed", message, StringComparison.Ordinal);
        Assert.Contains("1000000 bytes", message, StringComparison.Ordinal);
        Assert.DoesNotContain("/api/v1/worker", message, StringComparison.Ordinal);
        Assert.DoesNotContain("{", message, StringComparison.Ordinal);
        Assert.DoesNotContain("413", message, StringComparison.Ordinal);
    }

    private static (int Width, int Height) Dimensions(byte[] png) =>
        Atelier.Core.Jobs.ImageHeaders.Read(png) is { Format: Atelier.Core.Jobs.ImageHeaders.Png } h ? (h.Width, h.Height) : (0, 0);

    [Fact]
    public async Task Worker_WhoseKeyIsRevoked_StopsLeasing_AndExitsWithItsExitCode()
    {
        await using var host = await TestHost.StartAsync();
        var issued = (await host.Admin().PostAsync("/api/v1/platform/worker-keys", new { name = "doomed" })).Created();
        var folder = Directory.CreateTempSubdirectory("atelier-worker-").FullName;
        try
        {
            await using var process = AtelierProcess.Start(folder, "worker", "--server", host.BaseAddress.ToString(), "--token",
                issued.GetProperty("secret").GetString()!, "--engine", "noop", "--id", "doomed-1");
            await Eventually.UntilAsync(async () => (await host.Admin().GetAsync("/api/v1/platform/workers")).Ok().EnumerateArray()
                .Any(w => w.GetProperty("id").GetString() == "doomed-1"), "the worker registered");
            (await host.Admin().PostAsync($"/api/v1/platform/worker-keys/{issued.GetProperty("id").GetString()}/revoke")).Ok();
            await process.WaitForExitAsync(TimeSpan.FromSeconds(90));
            Assert.Equal(77, process.ExitCode);
            var refused = process.Output.Split('\n').Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement)
                .Single(e => e.GetProperty("EventId").GetInt32() == 5010);
            Assert.Contains("refused this worker's key", refused.GetProperty("Message").GetString(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task LocalWorker_OfAServerThatIsKilled_ExitsToo()
    {
        var folder = Directory.CreateTempSubdirectory("atelier-proc-").FullName;
        try
        {
            var port = AtelierProcess.FreePort();
            await using var server = AtelierProcess.Start(folder, "serve", $"--Atelier:Server:Urls=http://127.0.0.1:{port}",
                $"--Atelier:Server:DataDirectory={Path.Combine(folder, "data")}", "--Logging:LogLevel:Default=Information");
            await server.WaitForOutputAsync("Local worker started", TimeSpan.FromSeconds(120));
            var pid = int.Parse(LocalWorkerPid().Match(server.Output).Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(ProcessState.IsRunning(pid), "the local worker runs while its server does");

            await server.KillAloneAsync();
            await Eventually.UntilAsync(() => !ProcessState.IsRunning(pid), $"the local worker (pid {pid}) exited after its server was killed", TimeSpan.FromSeconds(90));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }


    [GeneratedRegex(@"Local worker started \(pid (\d+)\)")]
    private static partial Regex LocalWorkerPid();
}
