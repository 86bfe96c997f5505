using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Tenancy;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Accounts, for the platform admin key: the owners tenants are created under.</summary>
public static class AccountsApi
{
    public static IEndpointRouteBuilder MapAccountsApi(this IEndpointRouteBuilder routes)
    {
        var accounts = routes.MapGroup("/api/v1/accounts").WithTags("Accounts").RequireAccess(Access.Platform);
        accounts.MapPost("/", CreateAccount).WithName("CreateAccount");
        accounts.MapGet("/", ListAccounts).WithName("ListAccounts");
        accounts.MapGet("/{uid}", GetAccount).WithName("GetAccount");
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
}
