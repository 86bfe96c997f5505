using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Endpoints;

/// <summary>The model library: tags, models, versions, files, uploads, downloads, checkpoint config, access checks.</summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/tags", ListTags).WithTags("Tags").WithName("ListTags").RequireAccess(Access.TenantMember);
        routes.MapPost("/api/v1/tags", CreateTag).WithTags("Tags").WithName("CreateTag").RequireAccess(Access.TenantAdmin);
        routes.MapPost("/api/v1/platform/tags", CreatePlatformTag).WithTags("Tags").WithName("CreatePlatformTag").RequireAccess(Access.Platform);

        var models = routes.MapGroup("/api/v1/models").WithTags("Models").RequireAccess(Access.TenantAdmin);
        models.MapPost("/", CreateModel).WithName("CreateModel");
        models.MapGet("/", ListModels).WithName("ListModels");
        models.MapGet("/{modelId}", GetModel).WithName("GetModel");
        models.MapPatch("/{modelId}", UpdateModel).WithName("UpdateModel");
        models.MapDelete("/{modelId}", DeleteModel).WithName("DeleteModel");
        models.MapPost("/{modelId}/versions", CreateVersion).WithName("CreateModelVersion");
        models.MapGet("/{modelId}/versions", ListVersions).WithName("ListModelVersions");

        var versions = routes.MapGroup("/api/v1/model-versions").WithTags("Models");
        versions.MapGet("/{versionId}", GetVersion).WithName("GetModelVersion").RequireAccess(Access.TenantAdmin);
        versions.MapPatch("/{versionId}", UpdateVersion).WithName("UpdateModelVersion").RequireAccess(Access.TenantAdmin);
        versions.MapPost("/{versionId}/files", AddFile).WithName("AddModelFile").RequireAccess(Access.TenantAdmin);
        versions.MapGet("/{versionId}/access", Access_).WithName("ModelVersionAccess").RequireAccess(Access.TenantOrSession);
        routes.MapGet("/api/v1/model-files/{fileId}/download", DownloadState).WithTags("Models").WithName("ModelFileDownloadState")
            .RequireAccess(Access.TenantAdmin);

        var uploads = routes.MapGroup("/api/v1/uploads").WithTags("Uploads");
        uploads.MapPost("/", CreateUpload).WithName("CreateUpload").RequireAccess(Access.TenantAdmin);
        uploads.MapGet("/{uploadId}", GetUpload).WithName("GetUpload").RequireAccess(Access.TenantAdmin);
        uploads.MapPost("/{uploadId}/complete", CompleteUpload).WithName("CompleteUpload").RequireAccess(Access.TenantAdmin);
        // The upload's own secret (in the header CreateUpload names) authenticates the bytes.
        uploads.MapPut("/{uploadId}/content", ReceiveUpload).WithName("PutUploadContent");

        var checkpoint = routes.MapGroup("/api/v1/tokens/current/checkpoint").WithTags("Tokens").RequireAccess(Access.TenantMember);
        checkpoint.MapGet("/", GetCheckpoint).WithName("GetCheckpointConfig");
        checkpoint.MapPut("/", SetCheckpoint).WithName("SetCheckpointConfig");
        return routes;
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<TagDto>>>> ListTags(TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTagsAsync(ct));

    public static async Task<Created<ApiResponse<TagDto>>> CreateTag(CreateTagRequest request, TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/tags", await svc.CreateTagAsync(request, platform: false, ct));

    public static async Task<Created<ApiResponse<TagDto>>> CreatePlatformTag(CreateTagRequest request, TagService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/tags", await svc.CreateTagAsync(request, platform: true, ct));

    public static async Task<Created<ApiResponse<ModelDto>>> CreateModel(CreateModelRequest request, ModelService svc, HttpContext http, CancellationToken ct)
    {
        var model = await svc.CreateModelAsync(request, ct);
        return Reply.Created(http, $"/api/v1/models/{model.Id}", model);
    }

    public static async Task<Ok<ApiResponse<Page<ModelDto>>>> ListModels(string? type, string? tag, string? name, int? pageNumber, int? pageSize,
        ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListModelsAsync(type, tag, name, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ModelDto>>> GetModel(string modelId, ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetModelAsync(modelId, ct));

    public static async Task<Ok<ApiResponse<ModelDto>>> UpdateModel(string modelId, UpdateModelRequest request, ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateModelAsync(modelId, request, ct));

    public static async Task<NoContent> DeleteModel(string modelId, ModelService svc, CancellationToken ct)
    {
        await svc.DeleteModelAsync(modelId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<ModelVersionDto>>> CreateVersion(string modelId, CreateVersionRequest request, ModelVersionService svc, HttpContext http, CancellationToken ct)
    {
        var version = await svc.CreateVersionAsync(modelId, request, ct);
        return Reply.Created(http, $"/api/v1/model-versions/{version.Id}", version);
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<ModelVersionDto>>>> ListVersions(string modelId, ModelVersionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListVersionsAsync(modelId, ct));

    public static async Task<Ok<ApiResponse<ModelVersionDto>>> GetVersion(string versionId, ModelVersionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetVersionAsync(versionId, ct));

    public static async Task<Ok<ApiResponse<ModelVersionDto>>> UpdateVersion(string versionId, UpdateVersionRequest request, ModelVersionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateVersionAsync(versionId, request, ct));

    public static async Task<Created<ApiResponse<ModelFileDto>>> AddFile(string versionId, AddFileRequest request, ModelVersionService svc, HttpContext http, CancellationToken ct)
    {
        var file = await svc.AddFileAsync(versionId, request, ct);
        return Reply.Created(http, $"/api/v1/model-files/{file.Id}/download", file);
    }

    public static async Task<Ok<ApiResponse<VersionAccessDto>>> Access_(string versionId, ModelVersionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.AccessAsync(versionId, ct));

    public static async Task<Ok<ApiResponse<DownloadStateDto>>> DownloadState(string fileId, ModelVersionService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.DownloadStateAsync(fileId, ct));

    public static async Task<Created<ApiResponse<UploadDto>>> CreateUpload(CreateUploadRequest request, UploadService svc, HttpContext http, CancellationToken ct)
    {
        var upload = await svc.CreateAsync(request, $"{http.Request.Scheme}://{http.Request.Host}", ct);
        return Reply.Created(http, $"/api/v1/uploads/{upload.Id}", upload);
    }

    public static async Task<Ok<ApiResponse<UploadDto>>> GetUpload(string uploadId, UploadService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(uploadId, ct));

    public static async Task<Ok<ApiResponse<UploadDto>>> CompleteUpload(string uploadId, UploadService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.CompleteAsync(uploadId, ct));

    /// <summary>Streams the body to storage: the JSON body limit does not apply here, the model file limit does.</summary>
    /// <remarks>
    /// The secret comes in <c>X-Upload-Secret</c> (or as <c>Authorization: Bearer atu_…</c>); in the query string it is
    /// refused before anything is read, so that no secret is ever kept in an access log as a working credential.
    /// </remarks>
    public static async Task<Ok<ApiResponse<UploadDto>>> ReceiveUpload(string uploadId, UploadService svc, IOptions<ModelsOptions> options,
        HttpContext http, CancellationToken ct)
    {
        if (http.Request.Query.ContainsKey("secret"))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"secret: send it in the {UploadService.SecretHeader} header, never in the URL" }, errCode: ErrCodes.SecretInQuery);
        }

        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxFileBytes;
        }

        var secret = http.Request.Headers[UploadService.SecretHeader].ToString() is { Length: > 0 } header ? header : AccessFilters.BearerOf(http.Request);
        return Reply.Ok(http, await svc.ReceiveAsync(uploadId, secret, http.Request.Body, ct));
    }

    public static async Task<Ok<ApiResponse<CheckpointConfigDto>>> GetCheckpoint(CheckpointService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetCheckpointAsync(ct));

    public static async Task<Ok<ApiResponse<CheckpointConfigDto>>> SetCheckpoint(CheckpointConfigRequest request, CheckpointService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.SetCheckpointAsync(request, ct));
}
