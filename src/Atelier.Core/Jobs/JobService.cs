using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>Jobs of the tenant's agents through the API: submit (idempotent by client id), get, list, cancel, result.</summary>
public sealed class JobService(AtelierDb db, RequestContext ctx, TimeProvider clock, JobQueue queue, JobSignal signal)
{
    public const int MaxInputBytes = 256 * 1024;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    /// <summary>The agent named by id or name ("default" is every tenant's first agent).</summary>
    public async Task<Agent> FindAgentAsync(string agentIdOrName, CancellationToken ct) =>
        await db.Agents.AsNoTracking().FirstOrDefaultAsync(a => a.Id == agentIdOrName || a.Name == agentIdOrName, ct)
        ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"agent: {agentIdOrName} does not exist" }, status: 404);

    public async Task<IReadOnlyList<AgentDto>> ListAgentsAsync(CancellationToken ct) =>
        await db.Agents.AsNoTracking().OrderBy(a => a.CreatedAt).Select(a => new AgentDto(a.Id, a.Name, a.CreatedAt)).ToListAsync(ct);

    public async Task<(JobDto Job, bool Created)> SubmitAsync(string agentRef, SubmitJobRequest req, CancellationToken ct)
    {
        var agent = await FindAgentAsync(agentRef, ct);
        var clientId = req.JobId is null ? null : Validate.Identifier(req.JobId, "jobId");
        if (req.Input is not { ValueKind: JsonValueKind.Object } input)
        {
            throw AtelierException.InvalidInput("input", "must be an object (the generation request)");
        }

        var json = input.GetRawText();
        if (json.Length > MaxInputBytes)
        {
            throw AtelierException.InvalidInput("input", $"is larger than {MaxInputBytes} bytes");
        }

        var priority = Validate.Range(req.Priority, "priority", -100, 100, 0);
        var modelKey = input.TryGetProperty("override_settings", out var o) && o.ValueKind == JsonValueKind.Object
                       && o.TryGetProperty("sd_model_checkpoint", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        var (job, created) = await queue.EnqueueAsync(TenantId, agent.Id, clientId, json, modelKey, priority, 3, ct);
        if (created)
        {
            signal.Pulse();
        }

        return (ToDto(job), created);
    }

    public async Task<JobDto> GetAsync(string agentRef, string jobRef, CancellationToken ct) => ToDto(await FindAsync(agentRef, jobRef, ct));

    public async Task<Page<JobDto>> ListAsync(string agentRef, string? state, PageRequest page, CancellationToken ct)
    {
        var agent = await FindAgentAsync(agentRef, ct);
        var q = db.Jobs.AsNoTracking().Where(j => j.AgentId == agent.Id);
        if (state is not null)
        {
            q = q.Where(j => j.State == state);
        }

        return await q.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).ToPageAsync(page, ToDto, ct);
    }

    /// <summary>A queued job is canceled at once; a running one is flagged for its worker to stop; a finished one stays as it is.</summary>
    public async Task<JobDto> CancelAsync(string agentRef, string jobRef, CancellationToken ct)
    {
        var job = await FindAsync(agentRef, jobRef, ct);
        var now = clock.GetUtcNow().UtcDateTime;
        await db.Jobs.Where(j => j.Id == job.Id && j.State == JobQueue.Queued)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, "canceled").SetProperty(j => j.FinishedAt, now), ct);
        await db.Jobs.Where(j => j.Id == job.Id && j.State == JobQueue.Running)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.CancelRequested, true), ct);
        return ToDto(await FindAsync(agentRef, job.Id, ct));
    }

    public async Task<JobResultDto> ResultAsync(string agentRef, string jobRef, CancellationToken ct)
    {
        var job = await FindAsync(agentRef, jobRef, ct);
        JsonElement? result = job.ResultJson is null ? null : JsonDocument.Parse(job.ResultJson).RootElement.Clone();
        return new JobResultDto(job.Id, job.State, result);
    }

    private async Task<Job> FindAsync(string agentRef, string jobRef, CancellationToken ct)
    {
        var agent = await FindAgentAsync(agentRef, ct);
        return await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.AgentId == agent.Id && (j.Id == jobRef || j.ClientJobId == jobRef), ct)
               ?? throw new AtelierException(ErrorCatalog.b_agent_jobnotfound, errCode: "job_not_found", errMessage: jobRef);
    }

    private static JobDto ToDto(Job j) =>
        new(j.Id, j.ClientJobId, j.AgentId, j.State, j.Attempt, j.MaxAttempts, j.Priority, j.CreatedAt, j.StartedAt, j.FinishedAt,
            j.ErrorCode, j.ErrorMessage, j.CancelRequested);
}
