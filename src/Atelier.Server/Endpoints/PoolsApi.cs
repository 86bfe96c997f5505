using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Core.Agents;
using Atelier.Core.Common;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The platform admin's computing pools and region configs, and every tenant's agent functions (what runs).</summary>
public static class PoolsApi
{
    public static IEndpointRouteBuilder MapPoolsApi(this IEndpointRouteBuilder routes)
    {
        var pools = routes.MapGroup("/api/v1/platform/computing-pools").WithTags("Computing pools").RequireAccess(Access.Platform);
        pools.MapPost("/", CreatePool).WithName("CreateComputingPool");
        pools.MapGet("/", ListPools).WithName("ListComputingPools");
        pools.MapGet("/{poolId}", GetPool).WithName("GetComputingPool");
        pools.MapPut("/{poolId}", UpdatePool).WithName("UpdateComputingPool");
        pools.MapDelete("/{poolId}", DeletePool).WithName("DeleteComputingPool");
        pools.MapGet("/{poolId}/regions/{region}", GetRegion).WithName("GetPoolRegionConfig");
        pools.MapPut("/{poolId}/regions/{region}", PutRegion).WithName("PutPoolRegionConfig");
        pools.MapDelete("/{poolId}/regions/{region}", DeleteRegion).WithName("DeletePoolRegionConfig");

        var functions = routes.MapGroup("/api/v1/platform/agent-functions").WithTags("Computing pools").RequireAccess(Access.Platform);
        functions.MapGet("/", ListFunctions).WithName("ListAgentFunctions");
        functions.MapDelete("/{functionId}", DeleteFunction).WithName("DeleteAgentFunction");
        return routes;
    }

    public static async Task<Created<ApiResponse<ComputingPoolDto>>> CreatePool(ComputingPoolRequest request, PoolService svc, HttpContext http, CancellationToken ct)
    {
        var pool = await svc.CreateAsync(request, ct);
        return Reply.Created(http, $"/api/v1/platform/computing-pools/{pool.Id}", pool);
    }

    public static async Task<Ok<ApiResponse<Page<ComputingPoolDto>>>> ListPools(int? pageNumber, int? pageSize, PoolService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ComputingPoolDto>>> GetPool(string poolId, PoolService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(poolId, ct));

    public static async Task<Ok<ApiResponse<ComputingPoolDto>>> UpdatePool(string poolId, ComputingPoolRequest request, PoolService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAsync(poolId, request, ct));

    public static async Task<NoContent> DeletePool(string poolId, PoolService svc, CancellationToken ct)
    {
        await svc.DeleteAsync(poolId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<PoolRegionDto>>> GetRegion(string poolId, string region, PoolService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetRegionAsync(poolId, region, ct));

    public static async Task<Ok<ApiResponse<PoolRegionDto>>> PutRegion(string poolId, string region, PoolRegionSpec request, PoolService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.PutRegionAsync(poolId, region, request, ct));

    public static async Task<NoContent> DeleteRegion(string poolId, string region, PoolService svc, CancellationToken ct)
    {
        await svc.DeleteRegionAsync(poolId, region, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<Page<AgentFunctionDto>>>> ListFunctions(int? pageNumber, int? pageSize, UnitService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.ListFunctionsAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<NoContent> DeleteFunction(string functionId, UnitService svc, CancellationToken ct)
    {
        await svc.DeleteFunctionAsync(functionId, ct);
        return TypedResults.NoContent();
    }
}
