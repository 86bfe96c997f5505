using Atelier.Contracts;
using Atelier.Contracts.Models;
using Atelier.Core.Models;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>The calling token's default checkpoint: what a generation that names no model runs.</summary>
public static class CheckpointApi
{
    public static IEndpointRouteBuilder MapCheckpointApi(this IEndpointRouteBuilder routes)
    {
        var checkpoint = routes.MapGroup("/api/v1/tokens/current/checkpoint").WithTags("Tokens").RequireAccess(Access.TenantMember);
        checkpoint.MapGet("/", GetCheckpoint).WithName("GetCheckpointConfig");
        checkpoint.MapPut("/", SetCheckpoint).WithName("SetCheckpointConfig");
        return routes;
    }

    public static async Task<Ok<ApiResponse<CheckpointConfigDto>>> GetCheckpoint(CheckpointService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetCheckpointAsync(ct));

    public static async Task<Ok<ApiResponse<CheckpointConfigDto>>> SetCheckpoint(CheckpointConfigRequest request, CheckpointService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.SetCheckpointAsync(request, ct));
}
