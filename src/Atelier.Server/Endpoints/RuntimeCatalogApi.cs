using Atelier.Contracts;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The platform admin's runtime catalog: regions, kube configs, function templates.</summary>
public static class RuntimeCatalogApi
{
    public static IEndpointRouteBuilder MapRuntimeCatalogApi(this IEndpointRouteBuilder routes)
    {
        var regions = routes.MapGroup("/api/v1/platform/regions").WithTags("Regions").RequireAccess(Access.Platform);
        regions.MapPost("/", CreateRegion).WithName("CreateRegion");
        regions.MapGet("/", ListRegions).WithName("ListRegions");
        regions.MapGet("/{name}", GetRegion).WithName("GetRegion");
        regions.MapPut("/{name}", UpdateRegion).WithName("UpdateRegion");
        regions.MapDelete("/{name}", DeleteRegion).WithName("DeleteRegion");

        var kube = routes.MapGroup("/api/v1/platform/kube-configs").WithTags("Kube configs").RequireAccess(Access.Platform);
        kube.MapPost("/", CreateKubeConfig).WithName("CreateKubeConfig");
        kube.MapGet("/", ListKubeConfigs).WithName("ListKubeConfigs");
        kube.MapDelete("/{kubeConfigId}", DeleteKubeConfig).WithName("DeleteKubeConfig");

        var templates = routes.MapGroup("/api/v1/platform/function-templates").WithTags("Function templates");
        templates.MapPost("/", CreateTemplate).WithName("CreateFunctionTemplate").RequireAccess(Access.Platform);
        templates.MapGet("/", ListTemplates).WithName("ListFunctionTemplates").RequireAccess(Access.AnyAdmin);
        templates.MapGet("/{templateId}", GetTemplate).WithName("GetFunctionTemplate").RequireAccess(Access.AnyAdmin);
        templates.MapPut("/{templateId}", UpdateTemplate).WithName("UpdateFunctionTemplate").RequireAccess(Access.Platform);
        templates.MapDelete("/{templateId}", DeleteTemplate).WithName("DeleteFunctionTemplate").RequireAccess(Access.Platform);
        return routes;
    }

    public static async Task<Created<ApiResponse<RegionDto>>> CreateRegion(RegionRequest request, RuntimeCatalogService svc, HttpContext http, CancellationToken ct)
    {
        var region = await svc.CreateRegionAsync(request, ct);
        return Reply.Created(http, $"/api/v1/platform/regions/{region.Name}", region);
    }

    public static async Task<Ok<ApiResponse<Page<RegionDto>>>> ListRegions(int? pageNumber, int? pageSize, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListRegionsAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<RegionDto>>> GetRegion(string name, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetRegionAsync(name, ct));

    public static async Task<Ok<ApiResponse<RegionDto>>> UpdateRegion(string name, RegionRequest request, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateRegionAsync(name, request, ct));

    public static async Task<NoContent> DeleteRegion(string name, RuntimeCatalogService svc, CancellationToken ct)
    {
        await svc.DeleteRegionAsync(name, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<KubeConfigDto>>> CreateKubeConfig(KubeConfigRequest request, RuntimeCatalogService svc, HttpContext http, CancellationToken ct)
    {
        var kc = await svc.CreateKubeConfigAsync(request, ct);
        return Reply.Created(http, $"/api/v1/platform/kube-configs/{kc.Id}", kc);
    }

    public static async Task<Ok<ApiResponse<Page<KubeConfigDto>>>> ListKubeConfigs(int? pageNumber, int? pageSize, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListKubeConfigsAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<NoContent> DeleteKubeConfig(string kubeConfigId, RuntimeCatalogService svc, CancellationToken ct)
    {
        await svc.DeleteKubeConfigAsync(kubeConfigId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<FunctionTemplateDto>>> CreateTemplate(FunctionTemplateRequest request, RuntimeCatalogService svc, HttpContext http, CancellationToken ct)
    {
        var t = await svc.CreateTemplateAsync(request, ct);
        return Reply.Created(http, $"/api/v1/platform/function-templates/{t.Id}", t);
    }

    public static async Task<Ok<ApiResponse<Page<FunctionTemplateDto>>>> ListTemplates(int? pageNumber, int? pageSize, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTemplatesAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<FunctionTemplateDto>>> GetTemplate(string templateId, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetTemplateAsync(templateId, ct));

    public static async Task<Ok<ApiResponse<FunctionTemplateDto>>> UpdateTemplate(string templateId, FunctionTemplateRequest request, RuntimeCatalogService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateTemplateAsync(templateId, request, ct));

    public static async Task<NoContent> DeleteTemplate(string templateId, RuntimeCatalogService svc, CancellationToken ct)
    {
        await svc.DeleteTemplateAsync(templateId, ct);
        return TypedResults.NoContent();
    }
}
