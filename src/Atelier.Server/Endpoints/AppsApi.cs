using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Apps of the tenant and the API tokens of each app.</summary>
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
        apps.MapPost("/{appId}/tokens", IssueToken).WithName("IssueToken").WithTags("Tokens").RequireAccess(Access.TenantAdmin);
        apps.MapGet("/{appId}/tokens", ListTokens).WithName("ListTokens").WithTags("Tokens").RequireAccess(Access.TenantAdmin);

        routes.MapGet("/api/v1/safety-rules", async (Atelier.Core.Security.ContentSafety svc, HttpContext http, CancellationToken ct) => Reply.Ok(http, await svc.GetAsync(ct)))
            .WithTags("Safety").WithName("GetSafetyRules").RequireAccess(Access.TenantAdmin);
        routes.MapPut("/api/v1/safety-rules", async (Atelier.Contracts.Safety.SafetyRulesRequest request, Atelier.Core.Security.ContentSafety svc, HttpContext http, CancellationToken ct) =>
            Reply.Ok(http, await svc.PutAsync(request, ct))).WithTags("Safety").WithName("PutSafetyRules").RequireAccess(Access.TenantAdmin);
        routes.MapPost("/api/v1/url-tests", TestUrl).WithTags("Apps").WithName("TestUrl").RequireAccess(Access.TenantAdmin);
        routes.MapGet("/api/v1/tokens/current", CurrentToken).WithTags("Tokens").WithName("CurrentToken").RequireAccess(Access.TenantMember);
        var tokens = routes.MapGroup("/api/v1/tokens").WithTags("Tokens").RequireAccess(Access.TenantAdmin);
        tokens.MapGet("/{tokenId}", GetToken).WithName("GetToken");
        tokens.MapPatch("/{tokenId}", UpdateToken).WithName("UpdateToken");
        tokens.MapPost("/{tokenId}/disable", DisableToken).WithName("DisableToken");
        tokens.MapPost("/{tokenId}/enable", EnableToken).WithName("EnableToken");
        tokens.MapDelete("/{tokenId}", RevokeToken).WithName("RevokeToken");
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
    /// <summary>Tests a URL before an app saves it (webhook, moderation endpoint): DNS, the address, TLS, an HTTP answer in time.</summary>
    public static async Task<Ok<ApiResponse<Atelier.Contracts.Safety.UrlTestResult>>> TestUrl(Atelier.Contracts.Safety.UrlTestRequest request,
        Atelier.Core.Security.UrlTester tester, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await tester.TestAsync(request, ct));

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

    public static async Task<Created<ApiResponse<IssuedTokenDto>>> IssueToken(string appId, IssueTokenRequest request, TokenService svc, HttpContext http, CancellationToken ct)
    {
        var issued = await svc.IssueAsync(appId, request, ct);
        return Reply.Created(http, $"/api/v1/tokens/{issued.Token.Id}", issued);
    }

    public static async Task<Ok<ApiResponse<Page<TokenDto>>>> ListTokens(string appId, int? pageNumber, int? pageSize, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(appId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<TokenDto>>> GetToken(string tokenId, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(tokenId, ct));

    public static async Task<Ok<ApiResponse<TokenDto>>> UpdateToken(string tokenId, UpdateTokenRequest request, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAsync(tokenId, request, ct));

    /// <summary>The calling token: its scopes, expiry and accumulated ended-session seconds.</summary>
    public static async Task<Ok<ApiResponse<TokenDto>>> CurrentToken(TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.CurrentAsync(ct));

    public static async Task<Ok<ApiResponse<TokenDto>>> DisableToken(string tokenId, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.SetDisabledAsync(tokenId, true, ct));

    public static async Task<Ok<ApiResponse<TokenDto>>> EnableToken(string tokenId, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.SetDisabledAsync(tokenId, false, ct));

    public static async Task<Ok<ApiResponse<TokenDto>>> RevokeToken(string tokenId, TokenService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RevokeAsync(tokenId, ct));
}
