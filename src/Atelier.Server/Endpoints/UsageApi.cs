using Atelier.Contracts;
using Atelier.Contracts.Usage;
using Atelier.Core.Common;
using Atelier.Core.Usage;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>
/// Usage indicators and charts, read from the rollups: a tenant admin sees its tenant, an app token its app, the platform
/// admin the tenant it names (<c>tenantId</c>) or every tenant.
/// </summary>
public static class UsageApi
{
    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder routes)
    {
        var usage = routes.MapGroup("/api/v1/usage").WithTags("Usage").RequireAccess(Access.TenantMemberOrPlatform);
        usage.MapGet("/indicators", Indicators).WithName("ListUsageIndicators");
        usage.MapGet("/query", Query).WithName("QueryUsage");
        usage.MapGet("/charts", Charts).WithName("ListUsageCharts");
        usage.MapPost("/charts/preview", Preview).WithName("PreviewUsageChart");
        usage.MapGet("/charts/{chartId}", Chart).WithName("GetUsageChart");
        return routes;
    }

    public static Ok<ApiResponse<IndicatorList>> Indicators(HttpContext http) => Reply.Ok(http, UsageService.Indicators());

    public static async Task<Ok<ApiResponse<UsageQueryResult>>> Query(string? indicator, string? from, string? to, string? step, string? by, string? appId,
        string? modelId, UsageService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.QueryAsync(new UsageQuery(indicator, from, to, step, by, appId, modelId), ct));

    public static Ok<ApiResponse<ChartList>> Charts(int? pageNumber, int? pageSize, HttpContext http) =>
        Reply.Ok(http, UsageService.Charts(PageRequest.From(pageNumber, pageSize)));

    public static async Task<Ok<ApiResponse<ChartDataDto>>> Chart(string chartId, string? from, string? to, string? step, UsageService svc, HttpContext http,
        CancellationToken ct) =>
        Reply.Ok(http, await svc.ChartAsync(chartId, from, to, step, ct));

    public static async Task<Ok<ApiResponse<ChartDataDto>>> Preview(ChartPreviewRequest? request, UsageService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PreviewAsync(request, ct));
}
