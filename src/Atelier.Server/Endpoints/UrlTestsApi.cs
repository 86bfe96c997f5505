using Atelier.Contracts;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>URL tests: what an app's webhook or moderation endpoint would answer, before it is saved.</summary>
public static class UrlTestsApi
{
    public static IEndpointRouteBuilder MapUrlTestsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/url-tests", TestUrl).WithTags("Apps").WithName("TestUrl").RequireAccess(Access.TenantAdmin);
        return routes;
    }

    /// <summary>Tests a URL before an app saves it (webhook, moderation endpoint): DNS, the address, TLS, an HTTP answer in time.</summary>
    public static async Task<Ok<ApiResponse<Atelier.Contracts.Safety.UrlTestResult>>> TestUrl(Atelier.Contracts.Safety.UrlTestRequest request,
        Atelier.Core.Security.UrlTester tester, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await tester.TestAsync(request, ct));
}
