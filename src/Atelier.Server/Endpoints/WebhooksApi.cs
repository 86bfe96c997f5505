using Atelier.Contracts;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Webhooks;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>
/// Webhooks: an app's default URL, events and signing secret (tenant admin), and the delivery log with replay (any
/// token of the tenant; an app-scoped token sees its own app's messages).
/// </summary>
public static class WebhooksApi
{
    public static IEndpointRouteBuilder MapWebhooksApi(this IEndpointRouteBuilder routes)
    {
        var app = routes.MapGroup("/api/v1/apps/{appId}/webhook").WithTags("Webhooks").RequireAccess(Access.TenantAdmin);
        app.MapGet("/", GetApp).WithName("GetAppWebhook");
        app.MapPut("/", PutApp).WithName("PutAppWebhook");
        app.MapPost("/secret-rotations", Rotate).WithName("RotateWebhookSecret");

        var deliveries = routes.MapGroup("/api/v1/webhook-deliveries").WithTags("Webhooks").RequireAccess(Access.TenantMember);
        deliveries.MapGet("/", List).WithName("ListWebhookDeliveries");
        deliveries.MapGet("/{deliveryId}", Get).WithName("GetWebhookDelivery");
        deliveries.MapPost("/{deliveryId}/replay", Replay).WithName("ReplayWebhookDelivery");
        return routes;
    }

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> GetApp(string appId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAppAsync(appId, ct));

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> PutApp(string appId, PutAppWebhookRequest request, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutAppAsync(appId, request, ct));

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> Rotate(string appId, RotateWebhookSecretRequest? request, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RotateAsync(appId, request, ct));

    public static async Task<Ok<ApiResponse<Page<WebhookDeliveryDto>>>> List(string? jobId, string? state, string? appId, int? pageNumber, int? pageSize,
        WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(jobId, state, appId, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<WebhookDeliveryDto>>> Get(string deliveryId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(deliveryId, ct));

    public static async Task<Ok<ApiResponse<WebhookDeliveryDto>>> Replay(string deliveryId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ReplayAsync(deliveryId, ct));
}
