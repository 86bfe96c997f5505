using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Models;

/// <summary>
/// The versions of a tenant's models (exactly one primary file, availability per role, a sync state), their files
/// (from an upload, a URL, or a hash) with the download state of URL files, and whether the caller may use a version.
/// A version named in the route that does not exist is <c>b_model_modelversionidnotfound</c>.
/// </summary>
public sealed class ModelVersionService(AtelierDb db, RequestContext ctx, TimeProvider clock, ModelService models, DownloadSignal downloads,
    IOptions<ModelsOptions> options)
{
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<ModelVersionDto> CreateVersionAsync(string modelId, CreateVersionRequest req, CancellationToken ct)
    {
        var model = await models.FindModelAsync(modelId, false, ct);
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
        return await ModelMapping.ToDtoAsync(db, version, ct);
    }

    public async Task<IReadOnlyList<ModelVersionDto>> ListVersionsAsync(string modelId, CancellationToken ct)
    {
        var model = await models.FindModelAsync(modelId, false, ct);
        var versions = await db.ModelVersions.AsNoTracking().Where(v => v.ModelId == model.Id).OrderBy(v => v.CreatedAt).ToListAsync(ct);
        var result = new List<ModelVersionDto>();
        foreach (var v in versions)
        {
            result.Add(await ModelMapping.ToDtoAsync(db, v, ct));
        }

        return result;
    }

    public async Task<ModelVersionDto> UpdateVersionAsync(string versionId, UpdateVersionRequest req, CancellationToken ct)
    {
        var version = await db.ModelVersions.FirstOrDefaultAsync(v => v.Id == versionId, ct) ?? throw VersionIdNotFound(versionId);
        version.AvailableRoleIds = await RoleIdsAsync(req.AvailableRoles, ct);
        Audit.Record(db, ctx, clock, "model_version.update", "model_version", version.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return await ModelMapping.ToDtoAsync(db, version, ct);
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

        return await ModelMapping.FileDtoAsync(db, file, ct);
    }

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

        var dto = await ModelMapping.ToDtoAsync(db, version, ct);
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

    private async Task<ModelFile> AddFileCoreAsync(Model model, ModelVersion version, AddFileRequest req, CancellationToken ct)
    {
        var alias = CheckAlias(model.Type, req.AliasName);

        var sources = new[] { req.UploadId, req.Url, req.Sha256 }.Count(s => s is not null);
        if (sources != 1)
        {
            throw AtelierException.InvalidInput("file", "name exactly one of uploadId, url, sha256");
        }

        var extension = ModelFileTypes.CheckExtension(model.Type, alias);
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
            ModelFileTypes.CheckContent(model.Type, extension, blob.Format);
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

            ModelFileTypes.CheckContent(model.Type, extension, blob.Format);
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

    /// <summary>
    /// A file's alias: a bare file name, except in an ONNX model, whose versions are diffusers folders
    /// (<c>unet/model.onnx</c>, <c>tokenizer/vocab.json</c>): there a relative path with '/' between its parts, none of
    /// them empty, <c>.</c> or <c>..</c>, no backslash. Workers rebuild the folder from these paths.
    /// </summary>
    internal static string CheckAlias(string modelType, string? aliasName)
    {
        var alias = Validate.Name(aliasName, "aliasName", 255);
        if (alias.Contains('\\', StringComparison.Ordinal))
        {
            throw AtelierException.InvalidInput("aliasName", "must not contain a backslash (folders are separated by '/')");
        }

        if (!alias.Contains('/', StringComparison.Ordinal))
        {
            return alias;
        }

        if (modelType != "onnx")
        {
            throw AtelierException.InvalidInput("aliasName", "must be a bare file name (only an onnx model's files are in folders)");
        }

        if (alias.Split('/').Any(part => part.Length == 0 || part is "." or ".." || part.Trim() != part))
        {
            throw AtelierException.InvalidInput("aliasName", "must be a relative path: no leading or doubled '/', no '.' or '..' part, no part that starts or ends with a space");
        }

        return alias;
    }

    private static void Fill(ModelFile file, StoredBlob blob)
    {
        file.Sha256 = blob.Sha256;
        file.Size = blob.Size;
        file.Format = blob.Format;
    }

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
}
