using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Core.Tenancy;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Platform-level resources, for the platform admin key: accounts, tenants and their lifecycle, the platform audit log.</summary>
public static class PlatformApi
{
    public static IEndpointRouteBuilder MapPlatformApi(this IEndpointRouteBuilder routes)
    {
        var accounts = routes.MapGroup("/api/v1/accounts").WithTags("Accounts").RequireAccess(Access.Platform);
        accounts.MapPost("/", CreateAccount).WithName("CreateAccount");
        accounts.MapGet("/", ListAccounts).WithName("ListAccounts");
        accounts.MapGet("/{uid}", GetAccount).WithName("GetAccount");

        var tenants = routes.MapGroup("/api/v1/tenants").WithTags("Tenants").RequireAccess(Access.Platform);
        tenants.MapPost("/", CreateTenant).WithName("CreateTenant");
        tenants.MapGet("/", ListTenants).WithName("ListTenants");
        tenants.MapGet("/{tenantId}", GetTenant).WithName("GetTenant");
        tenants.MapPost("/{tenantId}/init", InitTenant).WithName("InitTenant");
        tenants.MapPost("/{tenantId}/activate", ActivateTenant).WithName("ActivateTenant");
        tenants.MapPost("/{tenantId}/deactivate", DeactivateTenant).WithName("DeactivateTenant");

        routes.MapGet("/api/v1/platform/audit-log", ListPlatformAudit).WithTags("Audit").WithName("ListPlatformAudit")
            .RequireAccess(Access.Platform);
        return routes;
    }

    public static async Task<Created<ApiResponse<AccountDto>>> CreateAccount(CreateAccountRequest request, TenancyService svc, HttpContext http, CancellationToken ct)
    {
        var account = await svc.CreateAccountAsync(request, ct);
        return Reply.Created(http, $"/api/v1/accounts/{account.Uid}", account);
    }

    public static async Task<Ok<ApiResponse<Page<AccountDto>>>> ListAccounts(int? pageNumber, int? pageSize, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAccountsAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<AccountDto>>> GetAccount(string uid, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAccountAsync(uid, ct));

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

    public static async Task<Ok<ApiResponse<Page<AuditEntryDto>>>> ListPlatformAudit(string? operatorId, int? pageNumber, int? pageSize,
        IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAuditAsync(platform: true, operatorId, PageRequest.From(pageNumber, pageSize), ct));
}
