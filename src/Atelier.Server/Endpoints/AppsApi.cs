using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Apps of the tenant.</summary>
public static class AppsApi
{
    public static IEndpointRouteBuilder MapAppsApi(this IEndpointRouteBuilder routes)
    {
        var apps = routes.MapGroup("/api/v1/apps").WithTags("Apps");
        apps.MapPost("/", CreateApp).WithName("CreateApp").RequireAccess(Access.TenantAdmin);
        apps.MapGet("/", ListApps).WithName("ListApps").RequireAccess(Access.TenantAdmin);
        apps.MapGet("/{appId}", GetApp).WithName("GetApp").RequireAccess(Access.TenantMember);
        apps.MapPatch("/{appId}", UpdateApp).WithName("UpdateApp").RequireAccess(Access.TenantAdmin);
        apps.MapDelete("/{appId}", DeleteApp).WithName("DeleteApp").RequireAccess(Access.TenantAdmin);
        return routes;
    }

    public static async Task<Created<ApiResponse<AppDto>>> CreateApp(CreateAppRequest request, IdentityService svc, HttpContext http, CancellationToken ct)
    {
        var app = await svc.CreateAppAsync(request, ct);
        return Reply.Created(http, $"/api/v1/apps/{app.Id}", app);
    }

    public static async Task<Ok<ApiResponse<Page<AppDto>>>> ListApps(int? pageNumber, int? pageSize, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAppsAsync(PageRequest.From(pageNumber, pageSize), ct));

    /// <summary>An app token may read its own app; naming another app is <c>p_token_invalidappid</c>.</summary>
    public static async Task<Ok<ApiResponse<AppDto>>> GetApp(string appId, IdentityService svc, RequestContext ctx, HttpContext http, CancellationToken ct)
    {
        var caller = ctx.Caller!;
        if (!caller.Has(TokenScope.Admin) && caller.AppId != appId)
        {
            throw new AtelierException(ErrorCatalog.p_token_invalidappid, errCode: ErrCodes.AppMismatch, errMessage: appId);
        }

        return Reply.Ok(http, await svc.GetAppAsync(appId, ct));
    }

    public static async Task<Ok<ApiResponse<AppDto>>> UpdateApp(string appId, UpdateAppRequest request, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAppAsync(appId, request, ct));

    public static async Task<NoContent> DeleteApp(string appId, IdentityService svc, AuthCache cache, CancellationToken ct)
    {
        await svc.DeleteAppAsync(appId, ct);
        cache.EvictApp(appId);
        return TypedResults.NoContent();
    }
}
