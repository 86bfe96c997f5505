using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Workers;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Endpoints;

/// <summary>
/// Workers: the registered ones, for the platform admin key; and the worker protocol (a worker key, <c>atw_…</c>):
/// register, lease by long-poll with the worker's hot request info, heartbeat with progress, upload images, complete, fail.
/// </summary>
public static class WorkerApi
{
    public static IEndpointRouteBuilder MapWorkerApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/api/v1/platform/workers", ListWorkers).WithTags("Workers").WithName("ListWorkers").RequireAccess(Access.Platform);
        var worker = routes.MapGroup("/").WithTags("Workers").RequireAccess(Access.Worker);
        worker.MapPost(WorkerRoutes.Register, Register).WithName("RegisterWorker");
        worker.MapPost(WorkerRoutes.Lease, Lease).WithName("LeaseJob");
        worker.MapPost(WorkerRoutes.Heartbeat, Heartbeat).WithName("JobHeartbeat");
        worker.MapPut(WorkerRoutes.Image, PutImage).WithName("PutJobImage");
        worker.MapPost(WorkerRoutes.Complete, Complete).WithName("CompleteJob");
        worker.MapPost(WorkerRoutes.CompleteAndLease, CompleteAndLease).WithName("CompleteJobAndLeaseNext");
        worker.MapPost(WorkerRoutes.Fail, Fail).WithName("FailJob");
        worker.MapGet(WorkerRoutes.File, GetFile).WithName("GetJobModelFile");
        worker.MapGet(WorkerRoutes.Input, GetInput).WithName("GetJobInput");
        return routes;
    }

    public static async Task<Ok<ApiResponse<IReadOnlyList<WorkerDto>>>> ListWorkers(WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(ct));

    public static async Task<Ok<ApiResponse<WorkerDto>>> Register(RegisterWorkerRequest request, WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.RegisterAsync(request.WorkerId, request.Engine, request.Slots, ct));

    /// <summary>200 with a leased job, or 204 when none was queued within the wait.</summary>
    public static async Task<IResult> Lease(LeaseRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        var job = await svc.LeaseAsync(request.WorkerId, request.Slot, request.Hot, request.WaitSeconds ?? 0, ct);
        return job is null ? TypedResults.NoContent() : Reply.Ok(http, job);
    }

    public static async Task<Ok<ApiResponse<HeartbeatDto>>> Heartbeat(string jobId, HeartbeatRequest request, WorkerService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.HeartbeatAsync(jobId, Attempt(request.Attempt), request, ct));

    /// <summary>
    /// One file of the model version of a job whose running lease the caller's key holds, streamed from the object store
    /// (<c>application/octet-stream</c>, its SHA-256 as the ETag). A Range request is answered with 206 where the store
    /// can seek (the local store), so an interrupted fetch resumes; otherwise with the whole file.
    /// </summary>
    public static async Task<IResult> GetFile(string jobId, string sha256, int? attempt, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        var (content, size) = await svc.OpenFileAsync(jobId, Attempt(attempt), sha256, ct);
        if (!content.CanSeek)
        {
            http.Response.ContentLength = size; // the whole file: a stream that cannot seek answers no range
        }

        return TypedResults.Stream(content, "application/octet-stream", entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{sha256.ToLowerInvariant()}\""),
            enableRangeProcessing: true);
    }

    /// <summary>One input picture of a job whose running lease the caller's key holds (<c>application/octet-stream</c>, its SHA-256 as the ETag).</summary>
    public static async Task<IResult> GetInput(string jobId, string sha256, int? attempt, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        var (content, size) = await svc.OpenInputAsync(jobId, Attempt(attempt), sha256, ct);
        http.Response.ContentLength = size;
        return TypedResults.Stream(content, "application/octet-stream", entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{sha256.ToLowerInvariant()}\""));
    }

    /// <summary>
    /// The PNG bytes of one image (body <c>image/png</c>), stored under the job; the key goes into the completion. The
    /// JSON body limit does not apply here: an image may be as large as <see cref="JobsOptions.MaxImageBytes"/>.
    /// </summary>
    public static async Task<Ok<ApiResponse<StoredImage>>> PutImage(string jobId, int index, int? attempt, WorkerService svc, IOptions<JobsOptions> options,
        HttpContext http, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = options.Value.MaxImageBytes;
        }

        if (http.Request.ContentType is not { } type || !type.StartsWith("image/png", StringComparison.OrdinalIgnoreCase))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = "body: the content type must be image/png" },
                status: 415, errCode: ErrCodes.UnsupportedMediaType);
        }

        return Reply.Ok(http, await svc.PutImageAsync(jobId, Attempt(attempt), index, http.Request.Body, http.Request.ContentLength, ct));
    }

    public static async Task<Ok<ApiResponse<string>>> Complete(string jobId, CompleteJobRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        if (request.Result is not { } result)
        {
            throw AtelierException.InvalidInput("result", "must be an object");
        }

        await svc.CompleteAsync(jobId, Attempt(request.Attempt), result, ct);
        return Reply.Ok(http, "succeeded");
    }

    /// <summary>
    /// The completion, then the lease of the slot's next job: 200 with it, or 204 when none was queued within the wait
    /// (the job is completed either way). Lease fields that are refused refuse the whole call, before the completion.
    /// </summary>
    public static async Task<IResult> CompleteAndLease(string jobId, CompleteAndLeaseRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        if (request.Result is not { } result)
        {
            throw AtelierException.InvalidInput("result", "must be an object");
        }

        if (request.Next is not { } next)
        {
            throw AtelierException.InvalidInput("next", "must be a lease request: {workerId, slot, hot, waitSeconds}");
        }

        var job = await svc.CompleteAndLeaseAsync(jobId, Attempt(request.Attempt), result, next, ct);
        return job is null ? TypedResults.NoContent() : Reply.Ok(http, job);
    }

    public static async Task<Ok<ApiResponse<string>>> Fail(string jobId, FailJobRequest request, WorkerService svc, HttpContext http, CancellationToken ct)
    {
        await svc.FailAsync(jobId, Attempt(request.Attempt), request.ErrorCode, request.ErrorMessage, ct);
        return Reply.Ok(http, "failed");
    }

    private static int Attempt(int? attempt) => attempt is >= 1 ? attempt.Value : throw AtelierException.InvalidInput("attempt", "is required (the attempt of the lease)");
}
