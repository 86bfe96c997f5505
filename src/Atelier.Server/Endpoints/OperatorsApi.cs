using Atelier.Contracts;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The operators of the tenant: the people audit entries name.</summary>
public static class OperatorsApi
{
    public static IEndpointRouteBuilder MapOperatorsApi(this IEndpointRouteBuilder routes)
    {
        var operators = routes.MapGroup("/api/v1/operators").WithTags("Operators").RequireAccess(Access.TenantAdmin);
        operators.MapPost("/", CreateOperator).WithName("CreateOperator");
        operators.MapGet("/", ListOperators).WithName("ListOperators");
        return routes;
    }

    public static async Task<Created<ApiResponse<OperatorDto>>> CreateOperator(CreateOperatorRequest request, IdentityService svc, HttpContext http, CancellationToken ct)
    {
        var op = await svc.CreateOperatorAsync(request, ct);
        return Reply.Created(http, $"/api/v1/operators/{op.Id}", op);
    }

    public static async Task<Ok<ApiResponse<Page<OperatorDto>>>> ListOperators(int? pageNumber, int? pageSize, IdentityService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListOperatorsAsync(PageRequest.From(pageNumber, pageSize), ct));
}
