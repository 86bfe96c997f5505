using System.Globalization;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;
using Atelier.Server.Tests.Worker;

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

    [Fact]
    public async Task LargeFiles_PastALoweredMultipartThreshold_AreStoredAndReadBackByteForByte()
    {
        await using var files = await FileServer.StartAsync();
        var settings = S3Settings();
        const long part = 5L << 20;
        settings["Atelier:Storage:S3MultipartThresholdBytes"] = part.ToString(CultureInfo.InvariantCulture);
        settings["Atelier:Storage:S3MultipartPartBytes"] = part.ToString(CultureInfo.InvariantCulture);
        var (host, world, worker) = await WorkerProtocolTests.StartAsync(settings: settings);
        await using var _ = host;
        var admin = world.AdminOf(host);
        // Past the lowered threshold: one uploaded (a presigned PUT, then on completion copied into place in parts, or streamed
        // back in parts where the server has no UploadPartCopy, as s3rver has not) and one
        // downloaded by the server (written in parts); text files, which an onnx folder model may hold.
        var uploaded = Text((2 * part) + 12345, 1);
        var downloaded = Text(part + 777, 2);
        var model = await DeliveredModels.OnnxFolderAsync(host, world, $"big-{Guid.NewGuid():N}"[..16], extra: new Dictionary<string, byte[]> { ["notes/uploaded.txt"] = uploaded });
        var added = (await admin.PostAsync($"/api/v1/model-versions/{model.VersionId}/files",
            new { aliasName = "notes/downloaded.txt", url = files.Add($"d-{Guid.NewGuid():N}.txt", downloaded) })).Created();
        await Library.WaitForDownloadAsync(admin, added.GetProperty("id").GetString()!, Library.Stored);

        // Read back through the API, as a worker fetches a leased job's model files.
        var id = await WorkerProtocolTests.SubmitAsync(host, world, input: DeliveredModels.Txt2Img(model.Name));
        var lease = (await WorkerProtocol.LeaseAsync(worker)).Ok();
        Assert.Equal(id, lease.GetProperty("id").GetString());
        var attempt = lease.GetProperty("attempt").GetInt32();
        foreach (var bytes in new[] { uploaded, downloaded })
        {
            using var req = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/worker/jobs/{id}/files/{ModelFiles.Sha256(bytes)}?attempt={attempt}");
            using var resp = await worker.Http.SendAsync(worker.Authorize(req));
            Assert.True(resp.IsSuccessStatusCode, $"{(int)resp.StatusCode}: {await resp.Content.ReadAsStringAsync()}");
            Assert.Equal(bytes, await resp.Content.ReadAsByteArrayAsync());
        }
    }

    [Fact]
    public async Task Upload_PastTheThreshold_IsSentInPresignedParts_AndCompletedWithTheirETags()
    {
        var settings = S3Settings();
        const long part = 5L << 20;
        settings["Atelier:Storage:S3MultipartThresholdBytes"] = part.ToString(CultureInfo.InvariantCulture);
        settings["Atelier:Storage:S3MultipartPartBytes"] = part.ToString(CultureInfo.InvariantCulture);
        await using var host = await TestHost.StartAsync(settings);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        var bytes = Text((2 * part) + 4321, 3);
        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "onnx", fileName = "notes.txt", size = bytes.Length, sha256 = ModelFiles.Sha256(bytes) })).Created();
        var id = upload.GetProperty("id").GetString()!;
        Assert.Equal("", upload.GetProperty("url").GetString());
        Assert.Equal(part, upload.GetProperty("partSize").GetInt64());
        var parts = upload.GetProperty("parts");
        Assert.Equal([(1, 0L, part), (2, part, part), (3, 2 * part, 4321L)],
            parts.EnumerateArray().Select(p => (p.GetProperty("partNumber").GetInt32(), p.GetProperty("offset").GetInt64(), p.GetProperty("size").GetInt64())));
        Assert.All(parts.EnumerateArray(), p =>
        {
            var query = new Uri(p.GetProperty("url").GetString()!).Query;
            Assert.Contains("X-Amz-Signature", query, StringComparison.Ordinal);
            Assert.Contains("uploadId=", query, StringComparison.Ordinal);
            Assert.Contains($"partNumber={p.GetProperty("partNumber").GetInt32()}", query, StringComparison.Ordinal);
        });

        // Completing without the parts, with one missing, or out of order: refused, and the upload stays pending.
        (await admin.PostAsync($"/api/v1/uploads/{id}/complete")).Error(ErrorCatalog.p_common_inputinvalid, 400);
        var etags = await Library.PutPartsAsync(parts, bytes);
        (await admin.PostAsync($"/api/v1/uploads/{id}/complete", new { parts = new[] { new { partNumber = 1, etag = etags[0] }, new { partNumber = 2, etag = etags[1] } } }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        (await admin.PostAsync($"/api/v1/uploads/{id}/complete", new { parts = new[] { 2, 1, 3 }.Select(n => new { partNumber = n, etag = etags[n - 1] }) }))
            .Error(ErrorCatalog.p_common_inputinvalid, 400);
        Assert.Equal("pending", (await admin.GetAsync($"/api/v1/uploads/{id}")).Ok().GetProperty("state").GetString());

        var done = (await admin.PostAsync($"/api/v1/uploads/{id}/complete", new { parts = etags.Select((etag, i) => new { partNumber = i + 1, etag }) })).Ok();
        Assert.Equal("stored", done.GetProperty("state").GetString());
        Assert.Equal(ModelFiles.Sha256(bytes), done.GetProperty("sha256").GetString());
        // Completing again answers the stored upload.
        Assert.Equal("stored", (await admin.PostAsync($"/api/v1/uploads/{id}/complete")).Ok().GetProperty("state").GetString());
        var store = (Atelier.Storage.IObjectStore)host.Services.GetService(typeof(Atelier.Storage.IObjectStore))!;
        await using var stream = await store.OpenReadAsync(Atelier.Storage.ObjectStores.BlobKey(ModelFiles.Sha256(bytes)), CancellationToken.None);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(bytes, copy.ToArray());
        Assert.Null(await store.SizeAsync($"staging/{id}", CancellationToken.None));

        // Below the threshold, still one presigned PUT.
        var small = (await admin.PostAsync("/api/v1/uploads", new { type = "onnx", fileName = "small.txt", size = part })).Created();
        Assert.Contains("X-Amz-Signature", small.GetProperty("url").GetString(), StringComparison.Ordinal);
        Assert.False(small.TryGetProperty("parts", out var none) && none.ValueKind == System.Text.Json.JsonValueKind.Array);
    }

    /// <summary><c>atelier models upload</c> of a file past the threshold: the real program sends each part to its presigned URL and completes with their ETags.</summary>
    [Fact]
    public async Task Cli_ModelsUpload_PastTheThreshold_SendsTheParts_AndTheFileIsStored()
    {
        var settings = S3Settings();
        const long part = 5L << 20;
        settings["Atelier:Storage:S3MultipartThresholdBytes"] = part.ToString(CultureInfo.InvariantCulture);
        settings["Atelier:Storage:S3MultipartPartBytes"] = part.ToString(CultureInfo.InvariantCulture);
        await using var host = await TestHost.StartAsync(settings);
        var world = await Scenario.NewTenantAsync(host);
        var folder = Directory.CreateTempSubdirectory("atelier-cli-s3-").FullName;
        try
        {
            // A LoRA of about 12 MB: three parts of 5 MiB.
            var bytes = ModelFiles.Safetensors(
                ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight" + Guid.NewGuid().ToString("N"), "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", "lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha"],
                new Dictionary<string, string> { ["ss_network_module"] = "networks.lora" }, floatsPerTensor: 1_000_000);
            Assert.True(bytes.Length > 2 * part);
            var file = Path.Combine(folder, "big-lora.safetensors");
            await File.WriteAllBytesAsync(file, bytes);

            var (code, stdout, stderr) = await AtelierProcess.RunAsync(folder,
                ["models", "upload", file, "--type", "lora", "--model", "big-lora", "--json", "--server", host.BaseAddress.ToString().TrimEnd('/'), "--token", world.AdminToken],
                new Dictionary<string, string?>
                {
                    ["ATELIER_CONFIG"] = Path.Combine(folder, "config.json"), ["ATELIER_SERVER"] = null, ["ATELIER_TOKEN"] = null, ["ATELIER_TENANT"] = null, ["ATELIER_OPERATOR"] = null,
                });

            Assert.True(code == 0, stderr);
            var stored = System.Text.Json.JsonDocument.Parse(stdout).RootElement.GetProperty("files")[0];
            Assert.Equal(("stored", "upload", ModelFiles.Sha256(bytes)), (stored.GetProperty("state").GetString(), stored.GetProperty("source").GetString(), stored.GetProperty("sha256").GetString()));
            var store = (Atelier.Storage.IObjectStore)host.Services.GetService(typeof(Atelier.Storage.IObjectStore))!;
            await using var stream = await store.OpenReadAsync(Atelier.Storage.ObjectStores.BlobKey(ModelFiles.Sha256(bytes)), CancellationToken.None);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(bytes, copy.ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Printable ASCII text of the given length (what a .txt file of a model folder holds).</summary>
    private static byte[] Text(long length, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[length];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = i % 80 == 79 ? (byte)'\n' : (byte)random.Next('a', 'z' + 1);
        }

        return bytes;
    }
}
