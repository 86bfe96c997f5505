using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Tenancy;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>
/// Every tenant, for the platform admin key: create, list, read, and its lifecycle (init, activate, deactivate).
/// The tenant a tenant credential is in is <see cref="TenantApi"/>.
/// </summary>
public static class TenantsApi
{
    public static IEndpointRouteBuilder MapTenantsApi(this IEndpointRouteBuilder routes)
    {
        var tenants = routes.MapGroup("/api/v1/tenants").WithTags("Tenants").RequireAccess(Access.Platform);
        tenants.MapPost("/", CreateTenant).WithName("CreateTenant");
        tenants.MapGet("/", ListTenants).WithName("ListTenants");
        tenants.MapGet("/{tenantId}", GetTenant).WithName("GetTenant");
        tenants.MapPost("/{tenantId}/init", InitTenant).WithName("InitTenant");
        tenants.MapPost("/{tenantId}/activate", ActivateTenant).WithName("ActivateTenant");
        tenants.MapPost("/{tenantId}/deactivate", DeactivateTenant).WithName("DeactivateTenant");
        return routes;
    }

    public static async Task<Created<ApiResponse<TenantDto>>> CreateTenant(CreateTenantRequest request, TenancyService svc, HttpContext http, CancellationToken ct)
    {
        var tenant = await svc.CreateTenantAsync(request, ct);
        return Reply.Created(http, $"/api/v1/tenants/{tenant.Id}", tenant);
    }

    public static async Task<Ok<ApiResponse<Page<TenantDto>>>> ListTenants(string? accountUid, string? state, int? pageNumber, int? pageSize,
        TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTenantsAsync(accountUid, Validate.EnumOrNull<TenantState>(state, "state"), PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<TenantDto>>> GetTenant(string tenantId, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetTenantAsync(tenantId, ct));

    public static async Task<Ok<ApiResponse<TenantInitResult>>> InitTenant(string tenantId, TenancyService svc, RequestContext ctx, HttpContext http, CancellationToken ct)
    {
        ctx.TenantId = tenantId;
        return Reply.Ok(http, await svc.InitAsync(tenantId, ct));
    }

    public static async Task<Ok<ApiResponse<TenantDto>>> ActivateTenant(string tenantId, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ActivateAsync(tenantId, ct));

    public static async Task<Ok<ApiResponse<TenantDto>>> DeactivateTenant(string tenantId, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.DeactivateAsync(tenantId, ct));
}
