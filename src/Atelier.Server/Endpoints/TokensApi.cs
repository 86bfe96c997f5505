using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The API tokens of each app, and the calling token itself.</summary>
public static class TokensApi
{
    public static IEndpointRouteBuilder MapTokensApi(this IEndpointRouteBuilder routes)
    {
        var apps = routes.MapGroup("/api/v1/apps").WithTags("Apps");
        apps.MapPost("/{appId}/tokens", IssueToken).WithName("IssueToken").WithTags("Tokens").RequireAccess(Access.TenantAdmin);
        apps.MapGet("/{appId}/tokens", ListTokens).WithName("ListTokens").WithTags("Tokens").RequireAccess(Access.TenantAdmin);

        routes.MapGet("/api/v1/tokens/current", CurrentToken).WithTags("Tokens").WithName("CurrentToken").RequireAccess(Access.TenantMember);
        var tokens = routes.MapGroup("/api/v1/tokens").WithTags("Tokens").RequireAccess(Access.TenantAdmin);
        tokens.MapGet("/{tokenId}", GetToken).WithName("GetToken");
        tokens.MapPatch("/{tokenId}", UpdateToken).WithName("UpdateToken");
        tokens.MapPost("/{tokenId}/disable", DisableToken).WithName("DisableToken");
        tokens.MapPost("/{tokenId}/enable", EnableToken).WithName("EnableToken");
        tokens.MapDelete("/{tokenId}", RevokeToken).WithName("RevokeToken");
        return routes;
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
