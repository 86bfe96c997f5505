using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Storage;

/// <summary>
/// The S3 backend against a real S3-compatible server (s3rver, started on loopback by scripts/test.sh and named in
/// ATELIER_TEST_S3): presigned uploads, completion, mismatches, and downloads stored into the bucket.
/// </summary>
public class S3StorageTests
{
    private static Dictionary<string, string> S3Settings()
    {
        var endpoint = Environment.GetEnvironmentVariable("ATELIER_TEST_S3")
                       ?? throw new InvalidOperationException("ATELIER_TEST_S3 is not set: run the tests through scripts/test.sh, which starts s3rver");
        return new Dictionary<string, string>
        {
            ["Atelier:Storage:Provider"] = "s3",
            ["Atelier:Storage:S3ServiceUrl"] = endpoint,
            ["Atelier:Storage:S3Bucket"] = "atelier",
            ["Atelier:Storage:S3AccessKey"] = "S3RVER",
            ["Atelier:Storage:S3SecretKey"] = "S3RVER",
            ["Atelier:Models:AllowPrivateNetworks"] = "true",
        };
    }

    [Fact]
    public async Task Upload_PresignedPutThenComplete_StoresByHash()
    {
        await using var host = await TestHost.StartAsync(S3Settings());
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var bytes = ModelFiles.Lora($"s3-{Guid.NewGuid():N}");
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "s3.safetensors", size = bytes.Length })).Created();
        Assert.True(upload.GetProperty("needsComplete").GetBoolean());
        var url = new Uri(upload.GetProperty("url").GetString()!);
        Assert.Contains("X-Amz-Signature", url.Query, StringComparison.Ordinal);

        // Completing before the bytes arrive is refused; the PUT goes straight to S3, not through Atelier.
        (await admin.PostAsync($"/api/v1/uploads/{upload.GetProperty("id").GetString()}/complete")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        var done = await Library.UploadAsync(host, admin, "lora", "s3.safetensors", bytes);
        Assert.Equal(ModelFiles.Sha256(bytes), done.GetProperty("sha256").GetString());
        Assert.Equal("lora", done.GetProperty("blob").GetProperty("detectedKind").GetString());

        var model = await Library.ModelAsync(admin, "lora");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = "s3.safetensors", uploadId = done.GetProperty("id").GetString(), primary = true } },
        })).Created();
        Assert.Equal("synced", version.GetProperty("syncState").GetString());
    }

    [Fact]
    public async Task Upload_DeclaredHashDiffers_IsRejectedAndStagedBytesDeleted()
    {
        await using var host = await TestHost.StartAsync(S3Settings());
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var bytes = ModelFiles.Lora($"s3-bad-{Guid.NewGuid():N}");
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "x.safetensors", size = bytes.Length, sha256 = new string('1', 64) })).Created();
        using (var put = new HttpRequestMessage(HttpMethod.Put, upload.GetProperty("url").GetString()) { Content = new ByteArrayContent(bytes) })
        {
            Assert.True((await admin.Http.SendAsync(put)).IsSuccessStatusCode);
        }

        var id = upload.GetProperty("id").GetString();
        (await admin.PostAsync($"/api/v1/uploads/{id}/complete")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        // The staged object is gone: completing again finds no bytes, and the upload is failed for good.
        Assert.Equal("failed", (await admin.GetAsync($"/api/v1/uploads/{id}")).Ok().GetProperty("state").GetString());
        var store = (Atelier.Storage.IObjectStore)host.Services.GetService(typeof(Atelier.Storage.IObjectStore))!;
        Assert.Null(await store.SizeAsync($"staging/{id}", CancellationToken.None));
        Assert.Null(await store.SizeAsync(Atelier.Storage.ObjectStores.BlobKey(ModelFiles.Sha256(bytes)), CancellationToken.None));
    }

    [Fact]
    public async Task Download_IntoS3_IsStoredAndReadable()
    {
        await using var files = await FileServer.StartAsync();
        await using var host = await TestHost.StartAsync(S3Settings());
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var bytes = ModelFiles.Checkpoint();
        var url = files.Add($"s3-{Guid.NewGuid():N}.safetensors", bytes);
        var model = await Library.ModelAsync(admin, "checkpoint");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v1", files = new[] { new { aliasName = "m.safetensors", url, primary = true } } })).Created();
        await Library.WaitForDownloadAsync(admin, version.GetProperty("files")[0].GetProperty("id").GetString()!, Library.Stored);
        var store = (Atelier.Storage.IObjectStore)host.Services.GetService(typeof(Atelier.Storage.IObjectStore))!;
        await using var stream = await store.OpenReadAsync(Atelier.Storage.ObjectStores.BlobKey(ModelFiles.Sha256(bytes)), CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
    }
}
