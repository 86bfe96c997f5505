using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Engine.Images;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Worker;

/// <summary>
/// Input pictures through the object store: an img2img job's init image and mask are stored when it is queued, the
/// leased body names them, and only the lease holder fetches them, by hash, through the worker's input route.
/// </summary>
public class InputDeliveryTests
{
    private static async Task<ApiResult> GetInputAsync(ApiClient worker, string jobId, string sha, int attempt)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{jobId}/inputs/{sha}?attempt={attempt}");
        return await worker.SendRawAsync(req);
    }

    [Fact]
    public async Task InitImageAndMask_AreStoredOnce_NamedInTheLease_AndServedOnlyToTheLeaseHolder()
    {
        var (host, world, worker) = await WorkerProtocolTests.StartAsync();
        await using var _ = host;
        var init = Png.Encode([.. Enumerable.Range(0, 64 * 64 * 3).Select(i => (byte)(i % 247))], 64, 64);
        var random = new Random(5);
        var mask = Png.Encode([.. Enumerable.Range(0, 64 * 64 * 3).Select(_ => (byte)(random.Next(2) * 255))], 64, 64);
        var tiny = Png.Encode(new byte[8 * 8 * 3], 8, 8); // under a kilobyte: it stays in the body
        var body = new { prompt = "x", steps = 2, width = 64, height = 64, init_images = new[] { Convert.ToBase64String(init), "data:image/png;base64," + Convert.ToBase64String(init), Convert.ToBase64String(tiny) }, mask = Convert.ToBase64String(mask) };
        var id = await WorkerProtocolTests.SubmitAsync(host, world, input: body);

        var lease = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        Assert.Equal(id, lease.GetProperty("id").GetString());
        var request = lease.GetProperty("request");
        var (initSha, maskSha) = (Sha(init), Sha(mask));
        // The same picture twice (plain and as a data URL) is one object; the body holds names, not pictures.
        Assert.Equal([$"atelier-input:sha256:{initSha}", $"atelier-input:sha256:{initSha}", Convert.ToBase64String(tiny)],
            request.GetProperty("init_images").EnumerateArray().Select(i => i.GetString()));
        Assert.Equal($"atelier-input:sha256:{maskSha}", request.GetProperty("mask").GetString());
        Assert.DoesNotContain(Convert.ToBase64String(init)[..100], request.GetRawText(), StringComparison.Ordinal);

        using (var resp = await worker.Http.SendAsync(worker.Authorize(new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{id}/inputs/{initSha}?attempt=1"))))
        {
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
            Assert.Equal(init, await resp.Content.ReadAsByteArrayAsync());
        }

        // Another key, another attempt, a hash the job does not name, not a worker key: never the bytes.
        var other = await WorkerProtocol.RegisterAsync(host, "w-other");
        Assert.Equal(ErrCodes.StaleAttempt, (await GetInputAsync(other, id, initSha, 1)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        Assert.Equal(ErrCodes.StaleAttempt, (await GetInputAsync(worker, id, initSha, 2)).Error(ErrorCatalog.p_common_inputinvalid, 409).GetProperty("errCode").GetString());
        Assert.Equal(ErrCodes.NotAJobFile, (await GetInputAsync(worker, id, new string('0', 64), 1)).Error(ErrorCatalog.p_common_inputinvalid, 404).GetProperty("errCode").GetString());
        (await GetInputAsync(worker, id, "abc", 1)).Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await GetInputAsync(world.AdminOf(host), id, initSha, 1)).Error(ErrorCatalog.b_session_tokenforbidden, 403);
    }

    private static string Sha(byte[] bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
}
