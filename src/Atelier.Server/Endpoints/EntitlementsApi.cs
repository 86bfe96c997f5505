using Atelier.Contracts;
using Atelier.Contracts.Entitlements;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Limits on the tenant's jobs and on each app's, and their image credits.</summary>
public static class EntitlementsApi
{
    public static IEndpointRouteBuilder MapEntitlementsApi(this IEndpointRouteBuilder routes)
    {
        var ent = routes.MapGroup("/api/v1/entitlements").WithTags("Entitlements");
        ent.MapGet("/", (EntitlementService svc, HttpContext http, CancellationToken ct) => ListEntitlements(svc, http, ct)).WithName("ListEntitlements").RequireAccess(Access.TenantAdmin);
        ent.MapPut("/{scope}", PutEntitlement).WithName("PutEntitlement").RequireAccess(Access.TenantAdmin);
        ent.MapPost("/{scope}/credits", AddCredits).WithName("AddEntitlementCredits").RequireAccess(Access.TenantAdmin);
        return routes;
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<EntitlementDto>>>> ListEntitlements(EntitlementService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(ct));

    /// <summary><c>{scope}</c> is <c>tenant</c> or an app id; null limits are no limits.</summary>
    public static async Task<Ok<ApiResponse<EntitlementDto>>> PutEntitlement(string scope, EntitlementRequest request, EntitlementService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutAsync(scope, request, ct));

    public static async Task<Ok<ApiResponse<EntitlementDto>>> AddCredits(string scope, CreditsRequest request, EntitlementService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.AddCreditsAsync(scope, request, ct));
}
