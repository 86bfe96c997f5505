using Atelier.Contracts;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Jobs;
using Atelier.Server.Auth;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Atelier.Server.Endpoints;

/// <summary>An agent's jobs (any token of the tenant); the agents themselves are in <see cref="AgentsApi"/>.</summary>
public static class JobsApi
{
    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder routes)
    {
        var jobs = routes.MapGroup("/api/v1/agents/{agentId}/jobs").WithTags("Jobs").RequireAccess(Access.TenantMember);
        jobs.MapPost("/", SubmitJob).WithName("SubmitJob");
        jobs.MapGet("/", ListJobs).WithName("ListJobs");
        jobs.MapGet("/{jobId}", GetJob).WithName("GetJob");
        jobs.MapPost("/{jobId}/cancel", CancelJob).WithName("CancelJob");
        jobs.MapGet("/{jobId}/result", JobResult).WithName("JobResult");
        jobs.MapGet("/{jobId}/preview", JobPreview).WithName("JobPreview");
        return routes;
    }

    /// <summary>202 for a new job, 200 for a retried submit that found the job it made before.</summary>
    public static async Task<IResult> SubmitJob(string agentId, SubmitJobRequest request, JobService svc, HttpContext http, CancellationToken ct)
    {
        var (job, created) = await svc.SubmitAsync(agentId, request, ct);
        var body = new ApiResponse<JobDto>(http.TraceIdentifier, true, job);
        return created ? TypedResults.Accepted($"/api/v1/agents/{agentId}/jobs/{job.Id}", body) : TypedResults.Ok(body);
    }

    public static async Task<Ok<ApiResponse<Page<JobDto>>>> ListJobs(string agentId, string? state, int? pageNumber, int? pageSize, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ListAsync(agentId, state, PageRequest.From(pageNumber, pageSize), ct));

    public static async Task<Ok<ApiResponse<JobDto>>> GetJob(string agentId, string jobId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.GetAsync(agentId, jobId, ct));

    public static async Task<Ok<ApiResponse<JobDto>>> CancelJob(string agentId, string jobId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.CancelAsync(agentId, jobId, ct));

    /// <summary>The running job's latest live preview (<c>image/png</c>); none yet or finished → 404 <c>no_preview</c>.</summary>
    public static async Task<IResult> JobPreview(string agentId, string jobId, JobService svc, HttpContext http, CancellationToken ct) =>
        PredictApi.PreviewReply(http, await svc.PreviewAsync(agentId, jobId, ct));

    public static async Task<Ok<ApiResponse<JobResultDto>>> JobResult(string agentId, string jobId, JobService svc, HttpContext http, CancellationToken ct) =>
        Reply.Ok(http, await svc.ResultAsync(agentId, jobId, ct));
}
