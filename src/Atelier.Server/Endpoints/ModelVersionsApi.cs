using Atelier.Contracts;
using Atelier.Contracts.Models;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>A model's versions, their files and the files' downloads, and the access check a client makes before using a version.</summary>
public static class ModelVersionsApi
{
    public static IEndpointRouteBuilder MapModelVersionsApi(this IEndpointRouteBuilder routes)
    {
        var models = routes.MapGroup("/api/v1/models").WithTags("Models").RequireAccess(Access.TenantAdmin);
        models.MapPost("/{modelId}/versions", CreateVersion).WithName("CreateModelVersion");
        models.MapGet("/{modelId}/versions", ListVersions).WithName("ListModelVersions");

        var versions = routes.MapGroup("/api/v1/model-versions").WithTags("Models");
        versions.MapGet("/{versionId}", GetVersion).WithName("GetModelVersion").RequireAccess(Access.TenantAdmin);
        versions.MapPatch("/{versionId}", UpdateVersion).WithName("UpdateModelVersion").RequireAccess(Access.TenantAdmin);
        versions.MapPost("/{versionId}/files", AddFile).WithName("AddModelFile").RequireAccess(Access.TenantAdmin);
        versions.MapGet("/{versionId}/access", Access_).WithName("ModelVersionAccess").RequireAccess(Access.TenantOrSession);
        routes.MapGet("/api/v1/model-files/{fileId}/download", DownloadState).WithTags("Models").WithName("ModelFileDownloadState")
            .RequireAccess(Access.TenantAdmin);
        return routes;
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
}
