using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Tenancy;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The tenant in scope: itself, its config, its global function settings; and <c>/me</c>.</summary>
public static class TenantApi
{
    public static IEndpointRouteBuilder MapTenantApi(this IEndpointRouteBuilder routes)
    {
        var tenant = routes.MapGroup("/api/v1/tenant").WithTags("Tenant").RequireAccess(Access.TenantAdmin);
        tenant.MapGet("/", GetTenant).WithName("GetOwnTenant");
        tenant.MapGet("/config", GetConfig).WithName("GetTenantConfig");
        tenant.MapPut("/config", PutConfig).WithName("PutTenantConfig");
        tenant.MapGet("/function-settings", GetFunctionSettings).WithName("GetFunctionSettings");
        tenant.MapPut("/function-settings", PutFunctionSettings).WithName("PutFunctionSettings")
            .Accepts<object>("application/json");
        tenant.MapGet("/function-settings/schema", GetFunctionSettingsSchema).WithName("GetFunctionSettingsSchema");

        routes.MapGet("/api/v1/me", WhoAmI).WithTags("Tenant").WithName("WhoAmI").RequireAccess(Access.TenantMember);
        return routes;
    }

    public static async Task<Ok<ApiResponse<TenantDto>>> GetTenant(TenancyService svc, RequestContext ctx, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetTenantAsync(ctx.TenantId!, ct));

    public static async Task<Ok<ApiResponse<TenantConfigDto>>> GetConfig(TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetConfigAsync(ct));

    public static async Task<Ok<ApiResponse<TenantConfigDto>>> PutConfig(PutTenantConfigRequest request, TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutConfigAsync(request, ct));

    public static async Task<Ok<ApiResponse<FunctionSettingsDto>>> GetFunctionSettings(TenancyService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetFunctionSettingsAsync(ct));

    /// <summary>The body is the settings document itself, read raw so that its parse errors are the schema's to report.</summary>
    public static async Task<Ok<ApiResponse<FunctionSettingsDto>>> PutFunctionSettings(TenancyService svc, HttpContext http, CancellationToken ct)
    {
        using var reader = new StreamReader(http.Request.Body);
        var raw = await reader.ReadToEndAsync(ct);
        return Reply.Ok(http, await svc.PutFunctionSettingsAsync(raw, ct));
    }

    public static IResult GetFunctionSettingsSchema() =>
        TypedResults.Text(TenancyService.FunctionSettingsSchema.Document.GetRawText(), "application/schema+json");

    public static Ok<ApiResponse<WhoAmIDto>> WhoAmI(RequestContext ctx, HttpContext http)
    {
        var c = ctx.Caller!;
        return Reply.Ok(http, new WhoAmIDto(c.IsPlatformAdmin ? "platformAdmin" : "token", c.CredentialId, ctx.TenantId, c.AppId, c.Scopes));
    }
}
