using System.Net;
using System.Text.Json;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>The model library through the API: models, uploads, downloads.</summary>
public static class Library
{
    public static async Task<string> ModelAsync(ApiClient admin, string type, string? name = null) =>
        (await admin.PostAsync("/api/v1/models", new { name = name ?? $"{type}-{Guid.NewGuid():N}"[..20], type })).Created().GetProperty("id").GetString()!;

    /// <summary>Uploads bytes the way a client does: ask for an upload, PUT the bytes to its URL (then complete it on S3).</summary>
    public static async Task<JsonElement> UploadAsync(TestHost host, ApiClient admin, string type, string fileName, byte[] bytes, string? sha256 = null, long? size = null)
    {
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type, fileName, size = size ?? bytes.Length, sha256 })).Created();
        if (upload.TryGetProperty("parts", out var parts) && parts.ValueKind == JsonValueKind.Array)
        {
            var etags = await PutPartsAsync(parts, bytes);
            return (await admin.PostAsync($"/api/v1/uploads/{upload.GetProperty("id").GetString()}/complete",
                new { parts = etags.Select((etag, i) => new { partNumber = i + 1, etag }) })).Ok();
        }

        using var put = UploadPut(upload, bytes);
        using var resp = await admin.Http.SendAsync(put);
        if (upload.GetProperty("needsComplete").GetBoolean())
        {
            Assert.True(resp.IsSuccessStatusCode, $"presigned PUT answered {(int)resp.StatusCode}");
            return (await admin.PostAsync($"/api/v1/uploads/{upload.GetProperty("id").GetString()}/complete")).Ok();
        }

        return (await ApiResult.ReadAsync(resp)).Ok();
    }

    /// <summary>PUTs each part of an upload in parts (its slice of <paramref name="bytes"/>, straight to the store, no credential) and returns the ETags in order.</summary>
    public static async Task<List<string>> PutPartsAsync(JsonElement parts, byte[] bytes)
    {
        using var http = new HttpClient();
        var etags = new List<string>();
        foreach (var part in parts.EnumerateArray())
        {
            var offset = (int)part.GetProperty("offset").GetInt64();
            var size = (int)part.GetProperty("size").GetInt64();
            using var put = new HttpRequestMessage(HttpMethod.Put, part.GetProperty("url").GetString()) { Content = new ByteArrayContent(bytes, offset, size) };
            using var resp = await http.SendAsync(put);
            Assert.True(resp.IsSuccessStatusCode, $"part {part.GetProperty("partNumber").GetInt32()} answered {(int)resp.StatusCode}: {await resp.Content.ReadAsStringAsync()}");
            etags.Add(resp.Headers.ETag?.Tag ?? throw new InvalidOperationException("the part's PUT answered no ETag"));
        }

        return etags;
    }

    /// <summary>The PUT of an upload's bytes: to its URL, with the headers it names (the local store's secret).</summary>
    public static HttpRequestMessage UploadPut(JsonElement upload, byte[] bytes)
    {
        var put = new HttpRequestMessage(HttpMethod.Put, upload.GetProperty("url").GetString()) { Content = new ByteArrayContent(bytes) };
        if (upload.TryGetProperty("headers", out var headers) && headers.ValueKind == JsonValueKind.Object)
        {
            foreach (var h in headers.EnumerateObject())
            {
                put.Headers.Add(h.Name, h.Value.GetString());
            }
        }

        return put;
    }

    public static async Task<JsonElement> WaitForDownloadAsync(ApiClient admin, string fileId, Func<ApiResult, bool> done)
    {
        var settled = await Eventually.ValueAsync(() => admin.GetAsync($"/api/v1/model-files/{fileId}/download"), done, $"download of {fileId} settled");
        return settled.Json;
    }

    public static bool Stored(ApiResult r) => r.Status == HttpStatusCode.OK && r.Json.GetProperty("data").GetProperty("state").GetString() == "stored";
    public static bool Failed(ApiResult r) => r.Status != HttpStatusCode.OK;

    /// <summary>
    /// A second model in the tenant, of other bytes than the demo model (a UNet of its own, uploaded), so that jobs need
    /// different models: the same bytes under two names are one model to hot-model scheduling.
    /// </summary>
    public static async Task<(string A, string B)> TwoModelsAsync(TestHost host, TenantWorld world)
    {
        var demo = (await world.AppOf(host).GetAsync("/sdapi/v1/sd-models")).Json[0];
        var unet = Path.Combine(Atelier.Engine.Onnx.DemoModel.Write(Path.Combine(host.Database.Folder, "second-model"), "second"), "unet", "model.onnx");
        await DeliveredModels.RegisterAsync(host, world, "second", "onnx", new Dictionary<string, byte[]> { ["model.onnx"] = await File.ReadAllBytesAsync(unet) }, "model.onnx");
        return (demo.GetProperty("model_name").GetString()!, "second");
    }
}
