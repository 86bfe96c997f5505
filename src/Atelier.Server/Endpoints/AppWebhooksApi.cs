using Atelier.Contracts;
using Atelier.Contracts.Jobs;
using Atelier.Core.Webhooks;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>An app's webhook: its default URL and events, and its signing secret and the secret's rotation (tenant admin).</summary>
public static class AppWebhooksApi
{
    public static IEndpointRouteBuilder MapAppWebhooksApi(this IEndpointRouteBuilder routes)
    {
        var app = routes.MapGroup("/api/v1/apps/{appId}/webhook").WithTags("Webhooks").RequireAccess(Access.TenantAdmin);
        app.MapGet("/", GetApp).WithName("GetAppWebhook");
        app.MapPut("/", PutApp).WithName("PutAppWebhook");
        app.MapPost("/secret-rotations", Rotate).WithName("RotateWebhookSecret");
        return routes;
    }

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> GetApp(string appId, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAppAsync(appId, ct));

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> PutApp(string appId, PutAppWebhookRequest request, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.PutAppAsync(appId, request, ct));

    public static async Task<Ok<ApiResponse<AppWebhookDto>>> Rotate(string appId, RotateWebhookSecretRequest? request, WebhookService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RotateAsync(appId, request, ct));
}
