using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Roles of the tenant: unique names, used by sessions and model availability.</summary>
public static class RolesApi
{
    public static IEndpointRouteBuilder MapRolesApi(this IEndpointRouteBuilder routes)
    {
        var roles = routes.MapGroup("/api/v1/roles").WithTags("Roles").RequireAccess(Access.TenantAdmin);
        roles.MapPost("/", CreateRole).WithName("CreateRole");
        roles.MapGet("/", ListRoles).WithName("ListRoles");
        roles.MapGet("/{roleId}", GetRole).WithName("GetRole");
        roles.MapPatch("/{roleId}", UpdateRole).WithName("UpdateRole");
        roles.MapDelete("/{roleId}", DeleteRole).WithName("DeleteRole");
        return routes;
    }

    public static async Task<Created<ApiResponse<RoleDto>>> CreateRole(CreateRoleRequest request, IdentityService svc, HttpContext http, CancellationToken ct)
    {
        var role = await svc.CreateRoleAsync(request, ct);
        return Reply.Created(http, $"/api/v1/roles/{role.Id}", role);
    }

    public static async Task<Ok<ApiResponse<Page<RoleDto>>>> ListRoles(int? pageNumber, int? pageSize, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListRolesAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<RoleDto>>> GetRole(string roleId, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetRoleAsync(roleId, ct));

    public static async Task<Ok<ApiResponse<RoleDto>>> UpdateRole(string roleId, UpdateRoleRequest request, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateRoleAsync(roleId, request, ct));

    public static async Task<NoContent> DeleteRole(string roleId, IdentityService svc, CancellationToken ct)
    {
        await svc.DeleteRoleAsync(roleId, ct);
        return TypedResults.NoContent();
    }
}
