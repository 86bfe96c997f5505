using Atelier.Server.Auth;

namespace Atelier.Server.Endpoints;

/// <summary>The tenant's content safety rules: words and patterns refused in prompts, and an optional moderation endpoint.</summary>
public static class SafetyRulesApi
{
    public static IEndpointRouteBuilder MapSafetyRulesApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/safety-rules", async (Atelier.Core.Security.ContentSafety svc, HttpContext http, CancellationToken ct) => Reply.Ok(http, await svc.GetAsync(ct)))
            .WithTags("Safety").WithName("GetSafetyRules").RequireAccess(Access.TenantAdmin);
        routes.MapPut("/api/v1/safety-rules", async (Atelier.Contracts.Safety.SafetyRulesRequest request, Atelier.Core.Security.ContentSafety svc, HttpContext http, CancellationToken ct) =>
            Reply.Ok(http, await svc.PutAsync(request, ct))).WithTags("Safety").WithName("PutSafetyRules").RequireAccess(Access.TenantAdmin);
        return routes;
    }
}
