using Atelier.Contracts;
using Atelier.Contracts.Sessions;
using Atelier.Core.Common;
using Atelier.Core.Sessions;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>Dedicated resource configs a session can ask for: engine, instance type, model, instance count.</summary>
public static class ResourceConfigsApi
{
    public static IEndpointRouteBuilder MapResourceConfigsApi(this IEndpointRouteBuilder routes)
    {
        var configs = routes.MapGroup("/api/v1/resource-configs").WithTags("Resource configs").RequireAccess(Access.TenantAdmin);
        configs.MapPost("/", CreateResourceConfig).WithName("CreateResourceConfig");
        configs.MapGet("/", ListResourceConfigs).WithName("ListResourceConfigs");
        configs.MapGet("/{resourceConfigId}", GetResourceConfig).WithName("GetResourceConfig");
        configs.MapPut("/{resourceConfigId}", UpdateResourceConfig).WithName("UpdateResourceConfig");
        configs.MapDelete("/{resourceConfigId}", DeleteResourceConfig).WithName("DeleteResourceConfig");
        return routes;
    }

    public static async Task<Created<ApiResponse<ResourceConfigDto>>> CreateResourceConfig(ResourceConfigRequest request, ResourceConfigService svc, HttpContext http, CancellationToken ct)
    {
        var rc = await svc.CreateAsync(request, ct);
        return Reply.Created(http, $"/api/v1/resource-configs/{rc.Id}", rc);
    }

    public static async Task<Ok<ApiResponse<Page<ResourceConfigDto>>>> ListResourceConfigs(int? pageNumber, int? pageSize, ResourceConfigService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ResourceConfigDto>>> GetResourceConfig(string resourceConfigId, ResourceConfigService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(resourceConfigId, ct));

    public static async Task<Ok<ApiResponse<ResourceConfigDto>>> UpdateResourceConfig(string resourceConfigId, ResourceConfigRequest request, ResourceConfigService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAsync(resourceConfigId, request, ct));

    public static async Task<NoContent> DeleteResourceConfig(string resourceConfigId, ResourceConfigService svc, CancellationToken ct)
    {
        await svc.DeleteAsync(resourceConfigId, ct);
        return TypedResults.NoContent();
    }
}
