using Atelier.Contracts;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The models of the tenant's library.</summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModelsApi(this IEndpointRouteBuilder routes)
    {
        var models = routes.MapGroup("/api/v1/models").WithTags("Models").RequireAccess(Access.TenantAdmin);
        models.MapPost("/", CreateModel).WithName("CreateModel");
        models.MapGet("/", ListModels).WithName("ListModels");
        models.MapGet("/{modelId}", GetModel).WithName("GetModel");
        models.MapPatch("/{modelId}", UpdateModel).WithName("UpdateModel");
        models.MapDelete("/{modelId}", DeleteModel).WithName("DeleteModel");
        return routes;
    }

    public static async Task<Created<ApiResponse<ModelDto>>> CreateModel(CreateModelRequest request, ModelService svc, HttpContext http, CancellationToken ct)
    {
        var model = await svc.CreateModelAsync(request, ct);
        return Reply.Created(http, $"/api/v1/models/{model.Id}", model);
    }

    public static async Task<Ok<ApiResponse<Page<ModelDto>>>> ListModels(string? type, string? tag, string? name, int? pageNumber, int? pageSize,
        ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListModelsAsync(type, tag, name, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ModelDto>>> GetModel(string modelId, ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetModelAsync(modelId, ct));

    public static async Task<Ok<ApiResponse<ModelDto>>> UpdateModel(string modelId, UpdateModelRequest request, ModelService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateModelAsync(modelId, request, ct));

    public static async Task<NoContent> DeleteModel(string modelId, ModelService svc, CancellationToken ct)
    {
        await svc.DeleteModelAsync(modelId, ct);
        return TypedResults.NoContent();
    }
}
