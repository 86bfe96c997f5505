using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The audit logs of mutating admin calls: the platform's (platform admin key) and the tenant's (tenant admin).</summary>
public static class AuditApi
{
    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/platform/audit-log", ListPlatformAudit).WithTags("Audit").WithName("ListPlatformAudit")
            .RequireAccess(Access.Platform);
        routes.MapGet("/api/v1/audit-log", ListAudit).WithTags("Audit").WithName("ListAudit").RequireAccess(Access.TenantAdmin);
        return routes;
    }

    public static async Task<Ok<ApiResponse<Page<AuditEntryDto>>>> ListPlatformAudit(string? operatorId, int? pageNumber, int? pageSize,
        IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAuditAsync(platform: true, operatorId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<Page<AuditEntryDto>>>> ListAudit(string? operatorId, int? pageNumber, int? pageSize,
        IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAuditAsync(platform: false, operatorId, PageRequest.From(pageNumber, pageSize), ct));
}
