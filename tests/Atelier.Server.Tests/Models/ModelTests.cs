using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Models;

/// <summary>A server whose downloads may reach loopback (where the test file server lives), and that retries quickly.</summary>
public sealed class ModelHost : IAsyncLifetime
{
    public TestHost Host { get; private set; } = null!;
    public FileServer Files { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Files = await FileServer.StartAsync();
        Host = await TestHost.StartAsync(new Dictionary<string, string>
        {
            ["Atelier:Models:AllowPrivateNetworks"] = "true",
            ["Atelier:Models:DownloadRetryDelaySeconds"] = "0.05",
        });
    }

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Files.DisposeAsync();
    }
}

public class ModelTests(ModelHost fixture) : IClassFixture<ModelHost>
{
    private TestHost Host => fixture.Host;
    private FileServer Files => fixture.Files;

    [Fact]
    public async Task Upload_Safetensors_IsHashedInspectedAndStoredOnce()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var bytes = ModelFiles.Lora("upload-once");
        var sha = ModelFiles.Sha256(bytes);
        var first = await Library.UploadAsync(Host, admin, "lora", "style.safetensors", bytes, sha);
        Assert.Equal("stored", first.GetProperty("state").GetString());
        var blob = first.GetProperty("blob");
        Assert.Equal(sha, blob.GetProperty("sha256").GetString());
        Assert.Equal("safetensors", blob.GetProperty("format").GetString());
        Assert.Equal("lora", blob.GetProperty("detectedKind").GetString());
        Assert.Equal(sha[..10], blob.GetProperty("autoV2").GetString());
        var headerLength = (int)BitConverter.ToUInt64(bytes, 0);
        var afterHeader = Convert.ToHexStringLower(SHA256.HashData(bytes.AsSpan(8 + headerLength)));
        Assert.Equal(afterHeader[..12], blob.GetProperty("autoV3").GetString());
        Assert.Contains("ss_network_module", blob.GetProperty("metadataJson").GetString(), StringComparison.Ordinal);

        await Library.UploadAsync(Host, admin, "lora", "same-bytes.safetensors", bytes);
        var stored = Directory.GetFiles(Path.Combine(Host.Database.Folder, "data", "objects", "blobs"), sha, SearchOption.AllDirectories);
        Assert.Single(stored);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(stored[0]));
    }

    [Fact]
    public async Task Upload_EmptyHashOfEmptyFile_MatchesAutomatic1111Vector()
    {
        // An empty file's AutoV2 (the first 10 hex digits of the SHA-256 of nothing) is e3b0c44298. Uploads are at least one byte, so check the inspector directly.
        using var inspector = new Atelier.Core.Models.BlobInspector();
        Assert.Equal("e3b0c44298", inspector.Finish().AutoV2);
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Upload_UnknownType_AnswersInvalidOssUploadType()
    {
        var world = await Scenario.NewTenantAsync(Host);
        (await world.AdminOf(Host).PostAsync("/api/v1/uploads", new { type = "video", fileName = "a.mp4", size = 10 }))
            .Error(ErrorCatalog.p_user_invalidossuploadtype, 400);
    }

    [Fact]
    public async Task Upload_SizeOrHashMismatch_IsRejectedAndNothingStored()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var bytes = ModelFiles.Lora("mismatch");
        var sha = ModelFiles.Sha256(bytes);

        var upload = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "a.safetensors", size = bytes.Length, sha256 = new string('0', 64) })).Created();
        using (var put = Library.UploadPut(upload, bytes))
        {
            var r = await ApiResult.ReadAsync(await admin.Http.SendAsync(put));
            Assert.Equal("upload_mismatch", r.Error(ErrorCatalog.p_common_inputinvalid, 400).GetProperty("errCode").GetString());
        }

        var shorter = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "b.safetensors", size = bytes.Length + 5 })).Created();
        using (var put = Library.UploadPut(shorter, bytes))
        {
            (await ApiResult.ReadAsync(await admin.Http.SendAsync(put))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        var longer = (await admin.PostAsync("/api/v1/uploads", new { type = "lora", fileName = "c.safetensors", size = bytes.Length - 5 })).Created();
        using (var put = Library.UploadPut(longer, bytes))
        {
            (await ApiResult.ReadAsync(await admin.Http.SendAsync(put))).Error(ErrorCatalog.p_common_inputinvalid, 400);
        }

        Assert.Empty(Directory.GetFiles(Path.Combine(Host.Database.Folder, "data", "objects"), sha, SearchOption.AllDirectories));
        Assert.Equal("failed", (await admin.GetAsync($"/api/v1/uploads/{upload.GetProperty("id").GetString()}")).Ok().GetProperty("state").GetString());
        // A wrong secret is no upload at all.
        using var forged = new HttpRequestMessage(HttpMethod.Put, new Uri(Host.BaseAddress, $"/api/v1/uploads/{shorter.GetProperty("id").GetString()}/content"))
        { Content = new ByteArrayContent(bytes) };
        forged.Headers.Add("X-Upload-Secret", "atu_x");
        (await ApiResult.ReadAsync(await admin.Http.SendAsync(forged))).Error(ErrorCatalog.p_common_inputinvalid, 404);
    }

    [Fact]
    public async Task Models_CrudNamesAndTags()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await Host.Admin().PostAsync("/api/v1/platform/tags", new { name = $"anime{Guid.NewGuid():N}"[..12] })).Created();
        var tenantTag = (await admin.PostAsync("/api/v1/tags", new { name = "portrait" })).Created().GetProperty("name").GetString()!;
        var tags = (await admin.GetAsync("/api/v1/tags")).Ok();
        Assert.Contains(tags.EnumerateArray(), t => t.GetProperty("scope").GetString() == "platform");

        var created = (await admin.PostAsync("/api/v1/models", new { name = "DreamShaper", type = "checkpoint", tags = new[] { tenantTag } })).Created();
        var id = created.GetProperty("id").GetString()!;
        (await admin.PostAsync("/api/v1/models", new { name = "DreamShaper", type = "lora" }))
            .Error(ErrorCatalog.p_model_modelsyncmodelnameduplicate, 409, new Dictionary<string, string> { ["Model"] = "DreamShaper" });
        (await admin.PostAsync("/api/v1/models", new { name = "Other", type = "lora", tags = new[] { "portrait", "nsfw-unknown" } }))
            .Error(ErrorCatalog.b_tag_invalidtagincluded, 400);
        (await admin.PatchAsync($"/api/v1/models/{id}", new { tags = new[] { "ghost-tag" } })).Error(ErrorCatalog.b_tag_invalidtagincluded, 400);
        Assert.Equal(1, (await admin.GetAsync("/api/v1/models?type=checkpoint&tag=portrait&name=Dream")).Ok().GetProperty("total").GetInt32());
        Assert.Equal(0, (await admin.GetAsync("/api/v1/models?type=lora")).Ok().GetProperty("total").GetInt32());
        // Another tenant's tag is not in this tenant's dictionary.
        var other = await Scenario.NewTenantAsync(Host);
        (await other.AdminOf(Host).PostAsync("/api/v1/models", new { name = "X", type = "lora", tags = new[] { tenantTag } })).Error(ErrorCatalog.b_tag_invalidtagincluded, 400);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/api/v1/models/{id}")).Status);
        (await admin.GetAsync($"/api/v1/models/{id}")).Error(ErrorCatalog.b_model_modelidnotfound, 404);
    }

    [Fact]
    public async Task NotFound_RouteIdsAndReferencedIds_AnswerTheirCodes()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        (await admin.GetAsync("/api/v1/models/mdl_ghost")).Error(ErrorCatalog.b_model_modelidnotfound, 404);
        (await admin.PostAsync("/api/v1/models/mdl_ghost/versions", new { name = "v1" })).Error(ErrorCatalog.b_model_modelidnotfound, 404);
        (await admin.GetAsync("/api/v1/model-versions/mv_ghost")).Error(ErrorCatalog.b_model_modelversionidnotfound, 404);
        (await admin.PostAsync("/api/v1/model-versions/mv_ghost/files", new { aliasName = "a.safetensors", sha256 = new string('a', 64) }))
            .Error(ErrorCatalog.b_model_modelversionidnotfound, 404);
        (await admin.PostAsync("/api/v1/resource-configs", new { name = "r", engine = "builtin", instanceType = "t", modelId = "mdl_ghost" }))
            .Error(ErrorCatalog.b_model_modelnotexist, 404, new Dictionary<string, string> { ["ID"] = "mdl_ghost" });
        (await world.AppOf(Host).PutAsync("/api/v1/tokens/current/checkpoint", new { modelVersionId = "mv_ghost" }))
            .Error(ErrorCatalog.b_model_modelversionnotexist, 404);
    }

    [Fact]
    public async Task Versions_PrimaryAliasAndTypeRules()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var modelId = await Library.ModelAsync(admin, "lora", "Detailer");
        var a = await Library.UploadAsync(Host, admin, "lora", "a.safetensors", ModelFiles.Lora("a"));
        var b = await Library.UploadAsync(Host, admin, "lora", "b.safetensors", ModelFiles.Lora("b"));
        var upA = a.GetProperty("id").GetString();
        var upB = b.GetProperty("id").GetString();

        (await admin.PostAsync($"/api/v1/models/{modelId}/versions", new
        {
            name = "v1",
            files = new[] { new { aliasName = "a.safetensors", uploadId = upA, primary = true }, new { aliasName = "b.safetensors", uploadId = upB, primary = true } },
        })).Error(ErrorCatalog.p_model_modelversioninvalidprimaryfile, 400, new Dictionary<string, string> { ["Model"] = "Detailer" });

        var v1 = (await admin.PostAsync($"/api/v1/models/{modelId}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = "a.safetensors", uploadId = upA, primary = true } },
        })).Created();
        var v1Id = v1.GetProperty("id").GetString()!;
        Assert.Equal("synced", v1.GetProperty("syncState").GetString());
        (await admin.PostAsync($"/api/v1/model-versions/{v1Id}/files", new { aliasName = "b.safetensors", uploadId = upB, primary = true }))
            .Error(ErrorCatalog.p_model_modelversioninvalidprimaryfile, 400, new Dictionary<string, string> { ["Model"] = "Detailer" });
        (await admin.PostAsync($"/api/v1/model-versions/{v1Id}/files", new { aliasName = "a.safetensors", uploadId = upB }))
            .Error(ErrorCatalog.p_model_modelsyncmodelfilealiasnameduplicate, 409);
        (await admin.PostAsync($"/api/v1/model-versions/{v1Id}/files", new { aliasName = "b.ckpt", uploadId = upB }))
            .Error(ErrorCatalog.p_model_modelfiletypenotsupport, 400, new Dictionary<string, string> { ["Type"] = ".safetensors/.pt" });

        // A text file renamed .safetensors is refused by its content.
        var text = await Library.UploadAsync(Host, admin, "lora", "notes.txt", "just some words\n"u8.ToArray());
        var json = (await admin.PostAsync($"/api/v1/model-versions/{v1Id}/files", new { aliasName = "c.safetensors", uploadId = text.GetProperty("id").GetString() }))
            .Error(ErrorCatalog.p_model_modelfiletypenotsupport, 400, new Dictionary<string, string> { ["Type"] = ".safetensors/.pt" });
        Assert.Equal("content_mismatch", json.GetProperty("errCode").GetString());
    }

    [Fact]
    public async Task ByHash_OnlyVisibleBlobsAndMatchingKinds()
    {
        var a = await Scenario.NewTenantAsync(Host);
        var b = await Scenario.NewTenantAsync(Host);
        var bytes = ModelFiles.Lora("by-hash");
        var sha = ModelFiles.Sha256(bytes);
        await Library.UploadAsync(Host, a.AdminOf(Host), "lora", "mine.safetensors", bytes);

        var aLora = await Library.ModelAsync(a.AdminOf(Host), "lora");
        var aVersion = (await a.AdminOf(Host).PostAsync($"/api/v1/models/{aLora}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
        var file = (await a.AdminOf(Host).PostAsync($"/api/v1/model-versions/{aVersion}/files", new { aliasName = "x.safetensors", sha256 = sha, primary = true })).Created();
        Assert.Equal("hash", file.GetProperty("source").GetString());
        Assert.Equal("stored", file.GetProperty("state").GetString());

        var aCheckpoint = await Library.ModelAsync(a.AdminOf(Host), "checkpoint");
        var ckVersion = (await a.AdminOf(Host).PostAsync($"/api/v1/models/{aCheckpoint}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
        (await a.AdminOf(Host).PostAsync($"/api/v1/model-versions/{ckVersion}/files", new { aliasName = "x.safetensors", sha256 = sha }))
            .Error(ErrorCatalog.p_model_modelgetfromhashmodeltypenotmatch, 400);

        // Tenant B never uploaded these bytes: for B the hash does not exist, and the answer says nothing more.
        var bLora = await Library.ModelAsync(b.AdminOf(Host), "lora");
        var bVersion = (await b.AdminOf(Host).PostAsync($"/api/v1/models/{bLora}/versions", new { name = "v1" })).Created().GetProperty("id").GetString()!;
        var refused = await b.AdminOf(Host).PostAsync($"/api/v1/model-versions/{bVersion}/files", new { aliasName = "x.safetensors", sha256 = sha });
        refused.Error(ErrorCatalog.p_common_inputinvalid, 404);
        var ghost = await b.AdminOf(Host).PostAsync($"/api/v1/model-versions/{bVersion}/files", new { aliasName = "y.safetensors", sha256 = new string('7', 64) });
        Assert.Equal(ghost.Json.GetProperty("subErrCode").GetString(), refused.Json.GetProperty("subErrCode").GetString());
    }

    [Fact]
    public async Task Download_FromUrl_ReportsProgressAndStores()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var bytes = ModelFiles.Checkpoint();
        var url = Files.Add($"ck-{Guid.NewGuid():N}.safetensors", bytes);
        var model = await Library.ModelAsync(admin, "checkpoint");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = "model.safetensors", url, primary = true } },
        })).Created();
        var fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
        var state = (await Library.WaitForDownloadAsync(admin, fileId, Library.Stored)).GetProperty("data");
        Assert.Equal(bytes.Length, state.GetProperty("downloadedBytes").GetInt64());
        Assert.Equal(bytes.Length, state.GetProperty("totalBytes").GetInt64());
        Assert.Equal(100.0, state.GetProperty("percent").GetDouble());
        Assert.True(state.GetProperty("bytesPerSecond").GetInt64() > 0);
        var after = (await admin.GetAsync($"/api/v1/model-versions/{version.GetProperty("id").GetString()}")).Ok();
        Assert.Equal("synced", after.GetProperty("syncState").GetString());
        Assert.Equal("checkpoint", after.GetProperty("files")[0].GetProperty("detectedKind").GetString());
        Assert.Equal(ModelFiles.Sha256(bytes), after.GetProperty("files")[0].GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task Download_TransientFailures_AreRetried()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var name = $"flaky-{Guid.NewGuid():N}.safetensors";
        Files.Add(name, ModelFiles.Lora("flaky"));
        var version = await VersionWithUrlAsync(admin, "lora", new Uri(Files.BaseAddress, $"/flaky/{name}").ToString());
        var fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
        var state = (await Library.WaitForDownloadAsync(admin, fileId, Library.Stored)).GetProperty("data");
        Assert.Equal(3, state.GetProperty("attempts").GetInt32());
    }

    [Fact]
    public async Task Download_EmptyAnswer_AnswersScOutputEmpty()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var version = await VersionWithUrlAsync(admin, "lora", new Uri(Files.BaseAddress, "/empty").ToString(), alias: "empty.safetensors");
        var fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
        await Library.WaitForDownloadAsync(admin, fileId, Library.Failed);
        (await admin.GetAsync($"/api/v1/model-files/{fileId}/download")).Error(ErrorCatalog.b_model_modelfiledownloadscoutputempty, 502);
        (await admin.GetAsync($"/api/v1/model-versions/{version.GetProperty("id").GetString()}/access"))
            .Error(ErrorCatalog.b_model_modelfilesyncnotfinished, 409);
    }

    [Fact]
    public async Task Download_NotFoundAtSource_AnswersDownloadErrorWithReason()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var version = await VersionWithUrlAsync(admin, "lora", new Uri(Files.BaseAddress, "/files/missing.safetensors").ToString());
        var fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
        await Library.WaitForDownloadAsync(admin, fileId, Library.Failed);
        (await admin.GetAsync($"/api/v1/model-files/{fileId}/download"))
            .Error(ErrorCatalog.p_model_invokemodeldownloaderror, 502, new Dictionary<string, string> { ["Reason"] = "the server answered HTTP 404" });
    }

    [Fact]
    public async Task DownloadState_OfUploadedFile_AnswersStateEmpty()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var up = await Library.UploadAsync(Host, admin, "lora", "u.safetensors", ModelFiles.Lora("state-empty"));
        var model = await Library.ModelAsync(admin, "lora");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = "u.safetensors", uploadId = up.GetProperty("id").GetString(), primary = true } },
        })).Created();
        var fileId = version.GetProperty("files")[0].GetProperty("id").GetString()!;
        (await admin.GetAsync($"/api/v1/model-files/{fileId}/download")).Error(ErrorCatalog.b_model_modelfiledownloadstateempty, 404);
    }

    [Fact]
    public async Task Access_RoleAndSyncRules()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var admin = world.AdminOf(Host);
        var up = await Library.UploadAsync(Host, admin, "checkpoint", "m.safetensors", ModelFiles.Checkpoint());
        var model = await Library.ModelAsync(admin, "checkpoint");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", availableRoles = new[] { "premium" },
            files = new[] { new { aliasName = "m.safetensors", uploadId = up.GetProperty("id").GetString(), primary = true } },
        })).Created().GetProperty("id").GetString()!;

        var plain = (await world.AppOf(Host).PostAsync("/api/v1/sessions", new { endUserId = "u1" })).Created().GetProperty("credential").GetString()!;
        var premium = (await world.AppOf(Host).PostAsync("/api/v1/sessions", new { endUserId = "u2", role = "premium" })).Created().GetProperty("credential").GetString()!;
        (await Host.Client.With(plain).GetAsync($"/api/v1/model-versions/{version}/access")).Error(ErrorCatalog.b_model_modelversionnotavailable, 403);
        var ok = (await Host.Client.With(premium).GetAsync($"/api/v1/model-versions/{version}/access")).Ok();
        Assert.Equal("checkpoint", ok.GetProperty("modelType").GetString());

        // A slow download keeps the version unusable until its bytes are stored.
        Files.SlowBytesPerSecond = 4096;
        var name = $"slow-{Guid.NewGuid():N}.safetensors";
        Files.Add(name, ModelFiles.Safetensors(["first_stage_model.x"], floatsPerTensor: 40_000));
        var slowVersion = await VersionWithUrlAsync(admin, "checkpoint", new Uri(Files.BaseAddress, $"/slow/{name}").ToString());
        (await Host.Client.With(premium).GetAsync($"/api/v1/model-versions/{slowVersion.GetProperty("id").GetString()}/access"))
            .Error(ErrorCatalog.b_model_modelfilesyncnotfinished, 409);
    }

    [Fact]
    public async Task CheckpointConfig_UnsetThenSet()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var app = world.AppOf(Host);
        (await app.GetAsync("/api/v1/tokens/current/checkpoint")).Error(ErrorCatalog.p_token_checkpointversionnotfound, 404);
        var admin = world.AdminOf(Host);
        var model = await Library.ModelAsync(admin, "checkpoint", "Base");
        var version = (await admin.PostAsync($"/api/v1/models/{model}/versions", new { name = "v2" })).Created().GetProperty("id").GetString()!;
        (await app.PutAsync("/api/v1/tokens/current/checkpoint", new { modelVersionId = version })).Ok();
        var got = (await app.GetAsync("/api/v1/tokens/current/checkpoint")).Ok();
        Assert.Equal("Base", got.GetProperty("modelName").GetString());
        Assert.Equal("v2", got.GetProperty("versionName").GetString());
    }

    [Fact]
    public async Task Init_InstallsDefaultModels()
    {
        var world = await Scenario.NewTenantAsync(Host);
        var models = (await world.AdminOf(Host).GetAsync("/api/v1/models?type=onnx")).Ok();
        Assert.Equal("atelier-demo", Assert.Single(models.GetProperty("items").EnumerateArray()).GetProperty("name").GetString());
    }

    private static async Task<JsonElement> VersionWithUrlAsync(ApiClient admin, string type, string url, string alias = "model.safetensors")
    {
        var model = await Library.ModelAsync(admin, type);
        return (await admin.PostAsync($"/api/v1/models/{model}/versions", new
        {
            name = "v1", files = new[] { new { aliasName = alias, url, primary = true } },
        })).Created();
    }
}
