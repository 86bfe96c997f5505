using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Core.Agents;
using Atelier.Core.Common;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>
/// A tenant's agents (members read, admins change), their versions, the scale templates, and the computing units that
/// run their workers; pools open to the tenant.
/// </summary>
public static class AgentsApi
{
    public static IEndpointRouteBuilder MapAgentsApi(this IEndpointRouteBuilder routes)
    {
        var agents = routes.MapGroup("/api/v1/agents").WithTags("Agents");
        agents.MapGet("/", ListAgents).WithName("ListAgents").RequireAccess(Access.TenantMember);
        agents.MapPost("/", CreateAgent).WithName("CreateAgent").RequireAccess(Access.TenantAdmin);
        agents.MapGet("/{agentId}", GetAgent).WithName("GetAgent").RequireAccess(Access.TenantMember);
        agents.MapPut("/{agentId}", UpdateAgent).WithName("UpdateAgent").RequireAccess(Access.TenantAdmin);
        agents.MapDelete("/{agentId}", DeleteAgent).WithName("DeleteAgent").RequireAccess(Access.TenantAdmin);
        agents.MapPost("/{agentId}/default", MakeDefault).WithName("MakeDefaultAgent").RequireAccess(Access.TenantAdmin);

        var versions = routes.MapGroup("/api/v1/agents/{agentId}/versions").WithTags("Agents").RequireAccess(Access.TenantAdmin);
        versions.MapPost("/", CreateVersion).WithName("CreateAgentVersion");
        versions.MapGet("/", ListVersions).WithName("ListAgentVersions");
        versions.MapGet("/{versionId}", GetVersion).WithName("GetAgentVersion");
        versions.MapDelete("/{versionId}", DeleteVersion).WithName("DeleteAgentVersion");

        var units = routes.MapGroup("/api/v1/agents/{agentId}/units").WithTags("Computing units").RequireAccess(Access.TenantAdmin);
        units.MapPost("/", CreateUnit).WithName("CreateComputingUnit");
        units.MapGet("/", ListUnits).WithName("ListComputingUnits");
        units.MapGet("/{unitId}", GetUnit).WithName("GetComputingUnit");
        units.MapPut("/{unitId}", UpdateUnit).WithName("UpdateComputingUnit");
        units.MapDelete("/{unitId}", DeleteUnit).WithName("DeleteComputingUnit");
        units.MapGet("/{unitId}/scaling", Scaling).WithName("GetUnitScaling");
        units.MapGet("/{unitId}/worker-keys", WorkerKeys).WithName("ListUnitWorkerKeys");
        units.MapPost("/{unitId}/redeploy", Redeploy).WithName("RedeployComputingUnit");

        var templates = routes.MapGroup("/api/v1/scale-templates").WithTags("Computing units").RequireAccess(Access.TenantAdmin);
        templates.MapPost("/", CreateTemplate).WithName("CreateScaleTemplate");
        templates.MapGet("/", ListTemplates).WithName("ListScaleTemplates");
        templates.MapGet("/{templateId}", GetTemplate).WithName("GetScaleTemplate");
        templates.MapPut("/{templateId}", UpdateTemplate).WithName("UpdateScaleTemplate");
        templates.MapDelete("/{templateId}", DeleteTemplate).WithName("DeleteScaleTemplate");

        routes.MapGet("/api/v1/computing-pools", ListOpenPools).WithTags("Computing units").WithName("ListOpenComputingPools").RequireAccess(Access.TenantAdmin);
        return routes;
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<AgentInfoDto>>>> ListAgents(AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAgentsAsync(ct));

    public static async Task<Created<ApiResponse<AgentInfoDto>>> CreateAgent(AgentRequest request, AgentService svc, HttpContext http, CancellationToken ct)
    {
        var agent = await svc.CreateAgentAsync(request, ct);
        return Reply.Created(http, $"/api/v1/agents/{agent.Id}", agent);
    }

    public static async Task<Ok<ApiResponse<AgentInfoDto>>> GetAgent(string agentId, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAgentAsync(agentId, ct));

    public static async Task<Ok<ApiResponse<AgentInfoDto>>> UpdateAgent(string agentId, AgentRequest request, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAgentAsync(agentId, request, ct));

    public static async Task<NoContent> DeleteAgent(string agentId, AgentService svc, CancellationToken ct)
    {
        await svc.DeleteAgentAsync(agentId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<AgentInfoDto>>> MakeDefault(string agentId, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.MakeDefaultAsync(agentId, ct));

    public static async Task<Created<ApiResponse<AgentVersionDto>>> CreateVersion(string agentId, AgentVersionRequest request, AgentService svc, HttpContext http,
        CancellationToken ct)
    {
        var v = await svc.CreateVersionAsync(agentId, request, ct);
        return Reply.Created(http, $"/api/v1/agents/{v.AgentId}/versions/{v.Id}", v);
    }

    public static async Task<Ok<ApiResponse<Page<AgentVersionDto>>>> ListVersions(string agentId, int? pageNumber, int? pageSize, AgentService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.ListVersionsAsync(agentId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<AgentVersionDto>>> GetVersion(string agentId, string versionId, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetVersionAsync(agentId, versionId, ct));

    public static async Task<NoContent> DeleteVersion(string agentId, string versionId, AgentService svc, CancellationToken ct)
    {
        await svc.DeleteVersionAsync(agentId, versionId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Created<ApiResponse<ComputingUnitDto>>> CreateUnit(string agentId, ComputingUnitRequest request, UnitService svc, HttpContext http,
        CancellationToken ct)
    {
        var unit = await svc.CreateAsync(agentId, request, ct);
        return Reply.Created(http, $"/api/v1/agents/{unit.AgentId}/units/{unit.Id}", unit);
    }

    public static async Task<Ok<ApiResponse<Page<ComputingUnitDto>>>> ListUnits(string agentId, int? pageNumber, int? pageSize, UnitService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(agentId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ComputingUnitDto>>> GetUnit(string agentId, string unitId, UnitService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(agentId, unitId, ct));

    public static async Task<Ok<ApiResponse<ComputingUnitDto>>> UpdateUnit(string agentId, string unitId, UpdateComputingUnitRequest request, UnitService svc,
        HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateAsync(agentId, unitId, request, ct));

    public static async Task<NoContent> DeleteUnit(string agentId, string unitId, UnitService svc, CancellationToken ct)
    {
        await svc.DeleteAsync(agentId, unitId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<UnitScalingDto>>> Scaling(string agentId, string unitId, UnitService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ScalingAsync(agentId, unitId, ct));

    public static async Task<Ok<ApiResponse<IReadOnlyList<UnitWorkerKeyDto>>>> WorkerKeys(string agentId, string unitId, UnitService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.WorkerKeysAsync(agentId, unitId, ct));

    public static async Task<Ok<ApiResponse<ComputingUnitDto>>> Redeploy(string agentId, string unitId, UnitService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RedeployAsync(agentId, unitId, ct));

    public static async Task<Created<ApiResponse<ScaleTemplateDto>>> CreateTemplate(ScaleTemplateRequest request, AgentService svc, HttpContext http, CancellationToken ct)
    {
        var t = await svc.CreateTemplateAsync(request, ct);
        return Reply.Created(http, $"/api/v1/scale-templates/{t.Id}", t);
    }

    public static async Task<Ok<ApiResponse<Page<ScaleTemplateDto>>>> ListTemplates(int? pageNumber, int? pageSize, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListTemplatesAsync(PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<ScaleTemplateDto>>> GetTemplate(string templateId, AgentService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetTemplateAsync(templateId, ct));

    public static async Task<Ok<ApiResponse<ScaleTemplateDto>>> UpdateTemplate(string templateId, ScaleTemplateRequest request, AgentService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.UpdateTemplateAsync(templateId, request, ct));

    public static async Task<NoContent> DeleteTemplate(string templateId, AgentService svc, CancellationToken ct)
    {
        await svc.DeleteTemplateAsync(templateId, ct);
        return TypedResults.NoContent();
    }

    public static async Task<Ok<ApiResponse<Page<ComputingPoolDto>>>> ListOpenPools(int? pageNumber, int? pageSize, PoolService svc, RequestContext ctx, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.ListForTenantAsync(ctx.TenantId!, PageRequest.From(pageNumber, pageSize), ct));
}
