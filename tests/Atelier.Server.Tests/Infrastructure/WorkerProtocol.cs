using System.Net.Http.Headers;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>The worker protocol spoken by hand: the test is the worker (register, lease, upload an image).</summary>
public static class WorkerProtocol
{
    /// <summary>A new worker key, registered as worker <paramref name="id"/> with <paramref name="slots"/> slots.</summary>
    public static async Task<ApiClient> RegisterAsync(TestHost host, string id = "w1", int slots = 1)
    {
        var key = (await host.Admin().PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        Assert.StartsWith("atw_", key, StringComparison.Ordinal);
        var worker = host.Client.With(key);
        var registered = (await worker.PostAsync("/api/v1/worker/register", new { workerId = id, engine = "noop", slots })).Ok();
        Assert.Equal(slots, registered.GetProperty("slots").GetInt32());
        return worker;
    }

    public static Task<ApiResult> LeaseAsync(ApiClient worker, string id = "w1", int slot = 0, string?[]? hot = null, int wait = 0) =>
        worker.PostAsync("/api/v1/worker/lease", new { workerId = id, slot, hot = hot ?? new string?[1], waitSeconds = wait });

    public static async Task<ApiResult> PutImageAsync(ApiClient worker, string jobId, int attempt, int index, byte[] bytes)
    {
        using var req = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/worker/jobs/{jobId}/images/{index}?attempt={attempt}") { Content = new ByteArrayContent(bytes) };
        req.Content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        return await worker.SendRawAsync(req);
    }
}
