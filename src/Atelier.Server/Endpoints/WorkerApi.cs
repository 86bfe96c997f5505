using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

public sealed record LeaseRequest(string? WorkerId, int? WaitSeconds);
public sealed record AttemptRequest(int? Attempt);
public sealed record CompleteRequest(int? Attempt, JsonElement? Result);
public sealed record FailRequest(int? Attempt, string? ErrorCode, string? ErrorMessage);
public sealed record HeartbeatDto(DateTime LeaseUntil, bool CancelRequested);

/// <summary>The worker protocol (a worker key, <c>atw_…</c>): lease by long-poll, heartbeat, complete, fail. Nothing else.</summary>
public static class WorkerApi
{
    public static IEndpointRouteBuilder MapWorkerApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/platform/worker-keys", IssueKey).WithTags("Workers").WithName("IssueWorkerKey").RequireAccess(Access.Platform);
        var worker = routes.MapGroup("/api/v1/worker").WithTags("Workers").RequireAccess(Access.Worker);
        worker.MapPost("/lease", Lease).WithName("LeaseJob");
        worker.MapPost("/jobs/{jobId}/heartbeat", Heartbeat).WithName("JobHeartbeat");
        worker.MapPost("/jobs/{jobId}/complete", Complete).WithName("CompleteJob");
        worker.MapPost("/jobs/{jobId}/fail", Fail).WithName("FailJob");
        return routes;
    }

    public static async Task<Created<ApiResponse<WorkerKeyDto>>> IssueKey(WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Created(http, "/api/v1/platform/worker-keys", await svc.IssueKeyAsync(ct));

    /// <summary>200 with a leased job, or 204 when none was queued within the wait.</summary>
    public static async Task<IResult> Lease(LeaseRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        var workerId = Validate.Identifier(request.WorkerId, "workerId");
        var job = await svc.LeaseAsync(workerId, request.WaitSeconds ?? 0, ct);
        return job is null ? TypedResults.NoContent() : Reply.Ok(http, job);
    }

    public static async Task<Ok<ApiResponse<HeartbeatDto>>> Heartbeat(string jobId, AttemptRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        var (until, cancel) = await svc.HeartbeatAsync(jobId, Attempt(request.Attempt), ct);
        return Reply.Ok(http, new HeartbeatDto(until, cancel));
    }

    public static async Task<Ok<ApiResponse<string>>> Complete(string jobId, CompleteRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        if (request.Result is not { ValueKind: JsonValueKind.Object } result)
        {
            throw AtelierException.InvalidInput("result", "must be an object");
        }

        await svc.CompleteAsync(jobId, Attempt(request.Attempt), result, ct);
        return Reply.Ok(http, "succeeded");
    }

    public static async Task<Ok<ApiResponse<string>>> Fail(string jobId, FailRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        await svc.FailAsync(jobId, Attempt(request.Attempt), request.ErrorCode, request.ErrorMessage, ct);
        return Reply.Ok(http, "failed");
    }

    private static int Attempt(int? attempt) => attempt is >= 1 ? attempt.Value : throw AtelierException.InvalidInput("attempt", "is required (the attempt of the lease)");
}
