using Atelier.Contracts;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Webhooks;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>
/// The webhook delivery log with replay (any token of the tenant; an app-scoped token sees its own app's messages).
/// </summary>
public static class WebhookDeliveriesApi
{
    public static IEndpointRouteBuilder MapWebhookDeliveriesApi(this IEndpointRouteBuilder routes)
    {
        var deliveries = routes.MapGroup("/api/v1/webhook-deliveries").WithTags("Webhooks").RequireAccess(Access.TenantMember);
        deliveries.MapGet("/", List).WithName("ListWebhookDeliveries");
        deliveries.MapGet("/{deliveryId}", Get).WithName("GetWebhookDelivery");
        deliveries.MapPost("/{deliveryId}/replay", Replay).WithName("ReplayWebhookDelivery");
        return routes;
    }

    public static async Task<Ok<ApiResponse<Page<WebhookDeliveryDto>>>> List(string? jobId, string? state, string? appId, int? pageNumber, int? pageSize,
        WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(jobId, state, appId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<WebhookDeliveryDto>>> Get(string deliveryId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(deliveryId, ct));

    public static async Task<Ok<ApiResponse<WebhookDeliveryDto>>> Replay(string deliveryId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ReplayAsync(deliveryId, ct));
}
