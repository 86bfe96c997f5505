using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>
/// The tenant's model library: models (name unique per tenant, tags from the dictionary), versions (exactly one
/// primary file, availability per role, a sync state) and files (from an upload, a URL, or a hash).
/// Not-found answers: a model or version named in the route is <c>b_model_modelidnotfound</c> /
/// <c>b_model_modelversionidnotfound</c>; one named inside a request body (a reference) is
/// <c>b_model_modelnotexist</c> / <c>b_model_modelversionnotexist</c>.
/// </summary>
public sealed class ModelService(AtelierDb db, RequestContext ctx, TimeProvider clock, DownloadSignal downloads, Microsoft.Extensions.Options.IOptions<ModelsOptions> options,
    Models.ResolutionCache resolutions)
{
    public static readonly string[] ModelTypes = ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler", "onnx"];

    /// <summary>File formats (by content) each model type accepts, and the extensions that announce them.</summary>
    private static readonly Dictionary<string, string[]> AllowedExtensions = new()
    {
        ["checkpoint"] = [".safetensors", ".ckpt"],
        ["lora"] = [".safetensors", ".pt"],
        ["embedding"] = [".safetensors", ".pt", ".bin"],
        ["vae"] = [".safetensors", ".ckpt", ".pt"],
        ["controlnet"] = [".safetensors", ".pth"],
        ["upscaler"] = [".pth", ".pt", ".safetensors"],
        ["onnx"] = [".onnx", ".onnx_data", ".pb", ".json", ".txt"],
    };

    private static readonly Dictionary<string, string[]> FormatsOfExtension = new()
    {
        [".safetensors"] = ["safetensors"],
        [".ckpt"] = ["pickle"],
        [".pt"] = ["pickle"],
        [".pth"] = ["pickle"],
        [".bin"] = ["pickle", "unknown"],
        [".onnx"] = ["onnx"],
        [".onnx_data"] = ["unknown", "onnx", "text", "json", "pickle"],
        [".pb"] = ["unknown", "onnx", "text", "json", "pickle"],
        [".json"] = ["json"],
        [".txt"] = ["text", "json"],
    };

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    // ---- tags

    public async Task<IReadOnlyList<TagDto>> ListTagsAsync(CancellationToken ct) =>
        await db.Tags.AsNoTracking().Where(t => t.TenantId == null || t.TenantId == TenantId).OrderBy(t => t.Name)
            .Select(t => new TagDto(t.Id, t.Name, t.TenantId == null ? "platform" : "tenant")).ToListAsync(ct);

    /// <summary>Adds a tag to the tenant's dictionary, or to the platform's when <paramref name="platform"/>.</summary>
    public async Task<TagDto> CreateTagAsync(CreateTagRequest req, bool platform, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name", 32);
        var scope = platform ? null : TenantId;
        if (await db.Tags.AnyAsync(t => t.Name == name && (t.TenantId == null || t.TenantId == scope), ct))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"name: tag {name} already exists" }, status: 409);
        }

        var tag = new Tag { Id = Ids.New("tag", clock), TenantId = scope, Name = name, CreatedAt = Now };
        db.Tags.Add(tag);
        Audit.Record(db, ctx, clock, "tag.create", "tag", tag.Id, scope);
        await db.SaveChangesAsync(ct);
        return new TagDto(tag.Id, tag.Name, platform ? "platform" : "tenant");
    }

    private async Task<string> CheckTagsAsync(IReadOnlyList<string>? tags, CancellationToken ct)
    {
        if (tags is null || tags.Count == 0)
        {
            return "";
        }

        var wanted = tags.Select(t => t?.Trim() ?? "").Distinct().ToList();
        var known = await db.Tags.AsNoTracking().Where(t => (t.TenantId == null || t.TenantId == TenantId) && wanted.Contains(t.Name))
            .Select(t => t.Name).ToListAsync(ct);
        var invalid = wanted.Except(known).ToList();
        if (invalid.Count > 0)
        {
            throw new AtelierException(ErrorCatalog.b_tag_invalidtagincluded, errCode: ErrCodes.UnknownTags, errMessage: string.Join(", ", invalid));
        }

        return string.Join('\n', wanted.Order());
    }

    // ---- models

    public async Task<ModelDto> CreateModelAsync(CreateModelRequest req, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name", 128);
        var type = req.Type is { } t && ModelTypes.Contains(t) ? t : throw AtelierException.InvalidInput("type", "must be one of " + string.Join(", ", ModelTypes));
        var tags = await CheckTagsAsync(req.Tags, ct);
        await EnsureNameFreeAsync(name, null, ct);
        var model = new Model
        {
            Id = Ids.New("mdl", clock), TenantId = TenantId, Name = name, Type = type,
            Description = Validate.Optional(req.Description, "description"), Tags = tags, CreatedAt = Now, UpdatedAt = Now,
        };
        db.Models.Add(model);
        Audit.Record(db, ctx, clock, "model.create", "model", model.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", name), ct);
        return ToDto(model);
    }

    public async Task<ModelDto> GetModelAsync(string id, CancellationToken ct) => ToDto(await FindModelAsync(id, false, ct));

    public Task<Page<ModelDto>> ListModelsAsync(string? type, string? tag, string? name, PageRequest page, CancellationToken ct)
    {
        var q = db.Models.AsNoTracking();
        if (type is not null)
        {
            q = q.Where(m => m.Type == type);
        }

        if (tag is not null)
        {
            // Tags are stored one per line, so a line match is an exact tag match.
            q = q.Where(m => ("\n" + m.Tags + "\n").Contains("\n" + tag + "\n"));
        }

        if (name is not null)
        {
            q = q.Where(m => m.Name.Contains(name));
        }

        return q.OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).ToPageAsync(page, ToDto, ct);
    }

    public async Task<ModelDto> UpdateModelAsync(string id, UpdateModelRequest req, CancellationToken ct)
    {
        var model = await FindModelAsync(id, true, ct);
        if (req.Name is not null)
        {
            var name = Validate.Name(req.Name, "name", 128);
            await EnsureNameFreeAsync(name, model.Id, ct);
            model.Name = name;
        }

        if (req.Description is not null)
        {
            model.Description = Validate.Optional(req.Description, "description");
        }

        if (req.Tags is not null)
        {
            model.Tags = await CheckTagsAsync(req.Tags, ct);
        }

        model.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "model.update", "model", model.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", model.Name), ct);
        return ToDto(model);
    }

    public async Task DeleteModelAsync(string id, CancellationToken ct)
    {
        var model = await FindModelAsync(id, true, ct);
        await db.ModelFiles.Where(f => f.ModelId == model.Id).ExecuteDeleteAsync(ct);
        await db.ModelVersions.Where(v => v.ModelId == model.Id).ExecuteDeleteAsync(ct);
        db.Models.Remove(model);
        Audit.Record(db, ctx, clock, "model.delete", "model", model.Id, TenantId);
        await db.SaveChangesAsync(ct);
    }

    private async Task EnsureNameFreeAsync(string name, string? exceptId, CancellationToken ct)
    {
        if (await db.Models.AnyAsync(m => m.Name == name && m.Id != exceptId, ct))
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", name);
        }
    }


    private async Task<Model> FindModelAsync(string id, bool tracking, CancellationToken ct)
    {
        var q = tracking ? db.Models : db.Models.AsNoTracking();
        return await q.FirstOrDefaultAsync(m => m.Id == id, ct)
               ?? throw new AtelierException(ErrorCatalog.b_model_modelidnotfound, errCode: ErrCodes.ModelNotFound, errMessage: id);
    }

    // ---- versions and files

    public async Task<ModelVersionDto> CreateVersionAsync(string modelId, CreateVersionRequest req, CancellationToken ct)
    {
        var model = await FindModelAsync(modelId, false, ct);
        var name = Validate.Name(req.Name, "name", 64);
        if (await db.ModelVersions.AnyAsync(v => v.ModelId == model.Id && v.Name == name, ct))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"name: version {name} already exists" }, status: 409);
        }

        var files = req.Files ?? [];
        if (files.Count(f => f.Primary == true) > 1)
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelversioninvalidprimaryfile, "Model", model.Name);
        }

        var version = new ModelVersion
        {
            Id = Ids.New("mv", clock), TenantId = TenantId, ModelId = model.Id, Name = name,
            AvailableRoleIds = await RoleIdsAsync(req.AvailableRoles, ct), CreatedAt = Now,
        };
        db.ModelVersions.Add(version);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var queued = false;
        foreach (var f in files)
        {
            queued |= (await AddFileCoreAsync(model, version, f, ct)).State == "queued";
        }

        Audit.Record(db, ctx, clock, "model_version.create", "model_version", version.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => new AtelierException(ErrorCatalog.p_model_modelsyncmodelfilealiasnameduplicate, errCode: ErrCodes.AliasTaken), ct);
        await tx.CommitAsync(ct);
        if (queued)
        {
            downloads.Wake();
        }

        return await GetVersionAsync(version.Id, ct);
    }

    public async Task<ModelVersionDto> GetVersionAsync(string versionId, CancellationToken ct)
    {
        var version = await FindVersionAsync(versionId, ct);
        return await ToDtoAsync(version, ct);
    }

    public async Task<IReadOnlyList<ModelVersionDto>> ListVersionsAsync(string modelId, CancellationToken ct)
    {
        var model = await FindModelAsync(modelId, false, ct);
        var versions = await db.ModelVersions.AsNoTracking().Where(v => v.ModelId == model.Id).OrderBy(v => v.CreatedAt).ToListAsync(ct);
        var result = new List<ModelVersionDto>();
        foreach (var v in versions)
        {
            result.Add(await ToDtoAsync(v, ct));
        }

        return result;
    }

    public async Task<ModelVersionDto> UpdateVersionAsync(string versionId, UpdateVersionRequest req, CancellationToken ct)
    {
        var version = await db.ModelVersions.FirstOrDefaultAsync(v => v.Id == versionId, ct) ?? throw VersionIdNotFound(versionId);
        version.AvailableRoleIds = await RoleIdsAsync(req.AvailableRoles, ct);
        Audit.Record(db, ctx, clock, "model_version.update", "model_version", version.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return await ToDtoAsync(version, ct);
    }

    public async Task<ModelFileDto> AddFileAsync(string versionId, AddFileRequest req, CancellationToken ct)
    {
        var version = await FindVersionAsync(versionId, ct);
        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        var file = await AddFileCoreAsync(model, version, req, ct);
        Audit.Record(db, ctx, clock, "model_file.add", "model_file", file.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => new AtelierException(ErrorCatalog.p_model_modelsyncmodelfilealiasnameduplicate, errCode: ErrCodes.AliasTaken), ct);
        if (file.State == "queued")
        {
            downloads.Wake();
        }

        return await FileDtoAsync(file, ct);
    }

    private async Task<ModelFile> AddFileCoreAsync(Model model, ModelVersion version, AddFileRequest req, CancellationToken ct)
    {
        var alias = Validate.Name(req.AliasName, "aliasName", 255);
        if (alias.Contains('/', StringComparison.Ordinal) || alias.Contains('\\', StringComparison.Ordinal))
        {
            throw AtelierException.InvalidInput("aliasName", "must be a bare file name");
        }

        var sources = new[] { req.UploadId, req.Url, req.Sha256 }.Count(s => s is not null);
        if (sources != 1)
        {
            throw AtelierException.InvalidInput("file", "name exactly one of uploadId, url, sha256");
        }

        var extension = CheckExtension(model.Type, alias);
        if (await db.ModelFiles.AnyAsync(f => f.ModelId == model.Id && f.AliasName == alias, ct)
            || db.ChangeTracker.Entries<ModelFile>().Any(e => e.Entity.ModelId == model.Id && e.Entity.AliasName == alias))
        {
            throw new AtelierException(ErrorCatalog.p_model_modelsyncmodelfilealiasnameduplicate, errCode: ErrCodes.AliasTaken, errMessage: alias);
        }

        if (req.Primary == true && (await db.ModelFiles.AnyAsync(f => f.VersionId == version.Id && f.IsPrimary, ct)
                                    || db.ChangeTracker.Entries<ModelFile>().Any(e => e.Entity.VersionId == version.Id && e.Entity.IsPrimary)))
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelversioninvalidprimaryfile, "Model", model.Name);
        }

        var file = new ModelFile
        {
            Id = Ids.New("mf", clock), TenantId = TenantId, ModelId = model.Id, VersionId = version.Id, AliasName = alias,
            IsPrimary = req.Primary == true, Source = "upload", State = "stored", CreatedAt = Now, UpdatedAt = Now,
        };
        if (req.UploadId is not null)
        {
            var upload = await db.Uploads.AsNoTracking().FirstOrDefaultAsync(u => u.Id == req.UploadId, ct);
            if (upload is null || upload.State != "stored")
            {
                throw AtelierException.InvalidInput("uploadId", upload is null ? "no such upload" : $"the upload is {upload.State}");
            }

            var blob = await db.Blobs.AsNoTracking().FirstAsync(b => b.Sha256 == upload.Sha256, ct);
            CheckContent(model.Type, extension, blob.Format);
            Fill(file, blob);
        }
        else if (req.Sha256 is not null)
        {
            var sha = req.Sha256.ToLowerInvariant();
            var blob = await BlobRegistry.FindVisibleAsync(db, sha, TenantId, ct)
                       ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                           new Dictionary<string, string> { ["Input"] = $"sha256: no stored file {sha} is visible to this tenant" }, status: 404);
            if (blob.DetectedKind != "unknown" && blob.DetectedKind != model.Type)
            {
                throw new AtelierException(ErrorCatalog.p_model_modelgetfromhashmodeltypenotmatch, errCode: ErrCodes.KindMismatch,
                    errMessage: $"the stored file is a {blob.DetectedKind}, the model is a {model.Type}");
            }

            CheckContent(model.Type, extension, blob.Format);
            file.Source = "hash";
            Fill(file, blob);
        }
        else
        {
            file.Source = "url";
            file.State = "queued";
            file.SourceUrl = AddressGuard.CheckUrlAtRequest(req.Url!, options.Value.AllowPrivateNetworks);
        }

        db.ModelFiles.Add(file);
        return file;
    }

    private static void Fill(ModelFile file, StoredBlob blob)
    {
        file.Sha256 = blob.Sha256;
        file.Size = blob.Size;
        file.Format = blob.Format;
    }


    /// <summary>The extension must be one the model type accepts: <c>p_model_modelfiletypenotsupport</c> names those.</summary>
    private static string CheckExtension(string modelType, string alias)
    {
        var allowed = AllowedExtensions[modelType];
        var extension = Path.GetExtension(alias).ToLowerInvariant();
        if (!AcceptsFile(modelType, alias))
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelfiletypenotsupport, "Type", string.Join("/", allowed));
        }

        return extension;
    }

    /// <summary>Whether a model of this type takes a file of this name (by its extension).</summary>
    public static bool AcceptsFile(string modelType, string fileName) =>
        AllowedExtensions.TryGetValue(modelType, out var allowed) && allowed.Contains(Path.GetExtension(fileName).ToLowerInvariant());

    /// <summary>The content must be what the extension says (a renamed file is refused).</summary>
    public static void CheckContent(string modelType, string extension, string format)
    {
        if (!FormatsOfExtension[extension].Contains(format))
        {
            throw new AtelierException(ErrorCatalog.p_model_modelfiletypenotsupport,
                new Dictionary<string, string> { ["Type"] = string.Join("/", AllowedExtensions[modelType]) },
                errCode: ErrCodes.ContentMismatch, errMessage: $"a {extension} file, but its content is {format}");
        }
    }

    public static string ExtensionOf(string alias) => Path.GetExtension(alias).ToLowerInvariant();

    private async Task<string> RoleIdsAsync(IReadOnlyList<string>? roles, CancellationToken ct)
    {
        if (roles is null || roles.Count == 0)
        {
            return "";
        }

        var ids = new List<string>();
        foreach (var r in roles.Distinct())
        {
            var role = await db.Roles.AsNoTracking().FirstOrDefaultAsync(x => x.Id == r || x.Name == r, ct)
                       ?? throw AtelierException.With(ErrorCatalog.b_user_rolenotfound, "Role", r);
            ids.Add(role.Id);
        }

        return string.Join('\n', ids.Distinct().Order());
    }

    private async Task<ModelVersion> FindVersionAsync(string versionId, CancellationToken ct) =>
        await db.ModelVersions.AsNoTracking().FirstOrDefaultAsync(v => v.Id == versionId, ct) ?? throw VersionIdNotFound(versionId);

    private static AtelierException VersionIdNotFound(string id) =>
        new(ErrorCatalog.b_model_modelversionidnotfound, errCode: ErrCodes.ModelVersionNotFound, errMessage: id);

    // ---- downloads

    /// <summary>The download state of a URL file. A file that was never downloaded has none; a failed download answers its error.</summary>
    public async Task<DownloadStateDto> DownloadStateAsync(string fileId, CancellationToken ct)
    {
        var file = await db.ModelFiles.AsNoTracking().FirstOrDefaultAsync(f => f.Id == fileId, ct)
                   ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"file: {fileId} does not exist" }, status: 404);
        if (file.Source != "url")
        {
            throw new AtelierException(ErrorCatalog.b_model_modelfiledownloadstateempty, errCode: ErrCodes.NotDownloaded,
                errMessage: $"file {file.Id} came from {(file.Source == "hash" ? "a hash" : "an upload")}; it has no download");
        }

        if (file.State == "failed")
        {
            var code = ErrorCatalog.All.FirstOrDefault(c => c.Code == file.ErrorCode) ?? ErrorCatalog.p_model_invokemodeldownloaderror;
            throw new AtelierException(code, new Dictionary<string, string> { ["Reason"] = file.ErrorMessage ?? "", ["Type"] = file.ErrorMessage ?? "" },
                status: 502, errCode: ErrCodes.DownloadFailed,
                errMessage: $"{file.ErrorMessage} (after {file.Attempts} attempts, {file.DownloadedBytes} bytes)");
        }

        double? percent = file.TotalBytes is > 0 ? Math.Round(100.0 * file.DownloadedBytes / file.TotalBytes.Value, 2) : null;
        return new DownloadStateDto(file.Id, file.State, file.DownloadedBytes, file.TotalBytes, percent, file.BytesPerSecond, file.Attempts,
            file.StartedAt, file.FinishedAt);
    }

    // ---- checkpoint config and access

    public async Task<CheckpointConfigDto> SetCheckpointAsync(CheckpointConfigRequest req, CancellationToken ct)
    {
        var tokenId = TokenIdOfCaller();
        var versionId = req.ModelVersionId ?? throw AtelierException.InvalidInput("modelVersionId", "is required");
        var version = await db.ModelVersions.AsNoTracking().FirstOrDefaultAsync(v => v.Id == versionId, ct)
                      ?? throw new AtelierException(ErrorCatalog.b_model_modelversionnotexist, errCode: ErrCodes.ModelVersionNotFound, errMessage: versionId);
        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        if (model.Type is not ("checkpoint" or "onnx"))
        {
            throw AtelierException.InvalidInput("modelVersionId", $"is a {model.Type}, not a checkpoint");
        }

        await db.ApiTokens.Where(t => t.Id == tokenId).ExecuteUpdateAsync(u => u.SetProperty(t => t.CheckpointVersionId, version.Id), ct);
        resolutions.Clear();
        return new CheckpointConfigDto(version.Id, model.Id, model.Name, version.Name);
    }

    public async Task<CheckpointConfigDto> GetCheckpointAsync(CancellationToken ct)
    {
        var tokenId = TokenIdOfCaller();
        var versionId = await db.ApiTokens.AsNoTracking().Where(t => t.Id == tokenId).Select(t => t.CheckpointVersionId).FirstOrDefaultAsync(ct);
        var version = versionId is null ? null : await db.ModelVersions.AsNoTracking().FirstOrDefaultAsync(v => v.Id == versionId, ct);
        if (version is null)
        {
            throw new AtelierException(ErrorCatalog.p_token_checkpointversionnotfound, errCode: ErrCodes.NoCheckpoint,
                errMessage: versionId is null ? "the token has no default checkpoint" : $"its version {versionId} was deleted");
        }

        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        return new CheckpointConfigDto(version.Id, model.Id, model.Name, version.Name);
    }

    /// <summary>
    /// Whether the caller may use a version now: a session's role must be among the version's roles
    /// (<c>b_model_modelversionnotavailable</c>), every file must be stored (<c>b_model_modelfilesyncnotfinished</c>)
    /// and exactly one must be primary (<c>p_model_modelversioninvalidprimaryfile</c>).
    /// </summary>
    public async Task<VersionAccessDto> AccessAsync(string versionId, CancellationToken ct)
    {
        var version = await FindVersionAsync(versionId, ct);
        var model = await db.Models.AsNoTracking().FirstAsync(m => m.Id == version.ModelId, ct);
        var roleId = ctx.Caller?.RoleId;
        if (roleId is not null && version.AvailableRoleIds.Length > 0 && !version.AvailableRoleIds.Split('\n').Contains(roleId))
        {
            var roleName = await db.Roles.AsNoTracking().Where(r => r.Id == roleId).Select(r => r.Name).FirstOrDefaultAsync(ct);
            throw new AtelierException(ErrorCatalog.b_model_modelversionnotavailable, errCode: ErrCodes.Role, errMessage: $"role {roleName} may not use version {version.Name}");
        }

        var dto = await ToDtoAsync(version, ct);
        if (dto.SyncState != "synced")
        {
            throw new AtelierException(ErrorCatalog.b_model_modelfilesyncnotfinished, errCode: dto.SyncState,
                errMessage: $"{dto.Files.Count(f => f.State != "stored")} of {dto.Files.Count} files are not stored yet");
        }

        if (dto.Files.Count(f => f.Primary) != 1)
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelversioninvalidprimaryfile, "Model", model.Name);
        }

        // Where a file was downloaded from may carry a private mirror or a signed link: not an end user's to see.
        var files = ctx.Caller?.Kind == CallerKind.Session ? [.. dto.Files.Select(f => f with { SourceUrl = null })] : dto.Files;
        return new VersionAccessDto(version.Id, model.Id, model.Name, model.Type, files);
    }

    private string TokenIdOfCaller()
    {
        var caller = ctx.Caller!;
        return caller.Kind == CallerKind.Token
            ? caller.CredentialId
            : throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.NotAToken, errMessage: "a checkpoint config belongs to an API token");
    }

    // ---- mapping

    private async Task<ModelVersionDto> ToDtoAsync(ModelVersion v, CancellationToken ct)
    {
        var files = await db.ModelFiles.AsNoTracking().Where(f => f.VersionId == v.Id).OrderBy(f => f.CreatedAt).ToListAsync(ct);
        var dtos = new List<ModelFileDto>();
        foreach (var f in files)
        {
            dtos.Add(await FileDtoAsync(f, ct));
        }

        var sync = files.Any(f => f.State == "failed") ? "failed" : files.All(f => f.State == "stored") ? "synced" : "syncing";
        return new ModelVersionDto(v.Id, v.ModelId, v.Name, v.AvailableRoleIds.Length == 0 ? [] : v.AvailableRoleIds.Split('\n'), sync, dtos, v.CreatedAt);
    }

    private async Task<ModelFileDto> FileDtoAsync(ModelFile f, CancellationToken ct)
    {
        var blob = f.Sha256 is null ? null : await db.Blobs.AsNoTracking().FirstOrDefaultAsync(b => b.Sha256 == f.Sha256, ct);
        return new ModelFileDto(f.Id, f.VersionId, f.AliasName, f.IsPrimary, f.Source, f.State, f.Sha256, f.Size, f.Format,
            blob?.DetectedKind, blob?.AutoV2, blob?.AutoV3, f.SourceUrl);
    }

    private static ModelDto ToDto(Model m) =>
        new(m.Id, m.Name, m.Type, m.Description, m.Tags.Length == 0 ? [] : m.Tags.Split('\n'), m.CreatedAt, m.UpdatedAt);
}
