using Atelier.Contracts;
using Atelier.Contracts.Workers;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Worker keys (<c>atw_…</c>), for the platform admin key: issue, list, revoke.</summary>
public static class WorkerKeysApi
{
    public static IEndpointRouteBuilder MapWorkerKeysApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/platform/worker-keys", IssueKey).WithTags("Workers").WithName("IssueWorkerKey").RequireAccess(Access.Platform);
        routes.MapGet("/api/v1/platform/worker-keys", ListKeys).WithTags("Workers").WithName("ListWorkerKeys").RequireAccess(Access.Platform);
        routes.MapPost("/api/v1/platform/worker-keys/{keyId}/revoke", RevokeKey).WithTags("Workers").WithName("RevokeWorkerKey").RequireAccess(Access.Platform);
        return routes;
    }

    public static async Task<Created<ApiResponse<WorkerKeyDto>>> IssueKey(IssueWorkerKeyRequest? request, WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/platform/worker-keys", await svc.IssueKeyAsync(request?.Name, ct));

    public static async Task<Ok<ApiResponse<IReadOnlyList<WorkerKeyInfoDto>>>> ListKeys(WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListKeysAsync(ct));

    public static async Task<Ok<ApiResponse<WorkerKeyInfoDto>>> RevokeKey(string keyId, WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RevokeKeyAsync(keyId, ct));
}
