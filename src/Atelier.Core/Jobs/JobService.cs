using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Contracts.Workers;
using Atelier.Core.Common;
using Atelier.Core.Models;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Storage;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>
/// Jobs of the tenant's agents: submit (idempotent by client id), get, list, cancel, result, images. The predict APIs
/// (A1111's and the async one) are jobs of the default agent made through <see cref="SubmitAsync"/> too.
/// </summary>
public sealed class JobService(AtelierDb db, RequestContext ctx, JobQueue queue, JobNotifier notifier, ModelResolver resolver,
    IObjectStore store, IOptions<JobsOptions> options, EntitlementService entitlements, Security.ContentSafety safety, JobWebhooks webhooks,
    IOptions<GenerationOptions> generation, AgentCache agents, IDatabaseProvider provider)
{
    public const int MaxInputBytes = 768 * 1024;
    public const string DefaultAgent = "default";
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");
    private Caller Caller => ctx.Caller ?? throw new InvalidOperationException("No caller.");

    /// <summary>The agent named by id or name ("default" is every tenant's first agent).</summary>
    public async Task<Agent> FindAgentAsync(string agentIdOrName, CancellationToken ct)
    {
        // Agents are never renamed, and go only when nothing uses them: one read per tenant and name, then memory for a while.
        return await agents.GetOrAddAsync($"{TenantId}\n{agentIdOrName}", async () =>
            await db.Agents.AsNoTracking().FirstOrDefaultAsync(a => a.Id == agentIdOrName || a.Name == agentIdOrName, ct)
            ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"agent: {agentIdOrName} does not exist" }, status: 404));
    }

    /// <summary>
    /// The agent an A1111 or predict call goes to: for a session, its resource config's agent, else its token's; for a
    /// token, the token's agent; else the tenant's default agent (its config's, else the one named <c>default</c>).
    /// </summary>
    public async Task<string> CallerAgentAsync(CancellationToken ct)
    {
        var caller = Caller;
        string? agentId = null;
        if (caller.Kind == CallerKind.Session)
        {
            var session = await db.Sessions.AsNoTracking().Where(s => s.Id == caller.CredentialId).Select(s => new { s.ResourceConfigId, s.TokenId }).FirstOrDefaultAsync(ct);
            if (session?.ResourceConfigId is { } rc)
            {
                agentId = await db.ResourceConfigs.AsNoTracking().Where(r => r.Id == rc).Select(r => r.AgentId).FirstOrDefaultAsync(ct);
            }

            if (agentId is null && session is not null)
            {
                agentId = await db.ApiTokens.AsNoTracking().Where(t => t.Id == session.TokenId).Select(t => t.AgentId).FirstOrDefaultAsync(ct);
            }
        }
        else if (caller.Kind == CallerKind.Token)
        {
            // Raw reads of committed rows (each A1111 and predict call makes them), the tenant filter written out.
            agentId = (await RawCommands.ReadAsync(db, """SELECT "AgentId" FROM api_tokens WHERE "Id" = {0} AND "TenantId" = {1}""",
                [caller.CredentialId, db.TenantScope], r => r.IsDBNull(0) ? null : r.GetString(0), ct)).FirstOrDefault();
        }

        agentId ??= (await RawCommands.ReadAsync(db, """SELECT "DefaultAgentId" FROM tenant_configs WHERE "TenantId" = {0}""",
            [db.TenantScope], r => r.IsDBNull(0) ? null : r.GetString(0), ct)).FirstOrDefault();
        return agentId ?? DefaultAgent;
    }

    /// <summary>The jobs API: the input says what it is (a ComfyUI workflow when it has <c>workflow</c>, img2img when it has <c>init_images</c>).</summary>
    public async Task<(JobDto Job, bool Created)> SubmitAsync(string agentRef, SubmitJobRequest req, CancellationToken ct)
    {
        var kind = req.Input is not { ValueKind: JsonValueKind.Object } i ? "txt2img"
            : i.TryGetProperty("workflow", out _) ? ComfyWorkflow.Kind : i.TryGetProperty("init_images", out _) ? "img2img" : "txt2img";
        return await SubmitAsync(agentRef, kind, req.Input, req.JobId, req.Priority, ct, new WebhookRequest(req.Webhook, req.WebhookEvents, "webhook", "webhookEvents"));
    }

    /// <summary>
    /// Checks the request, resolves its model in the registry (and against the caller's role), and queues it.
    /// <paramref name="queued"/> is told a new job's id once it is committed, before any worker is told of the job.
    /// </summary>
    public async Task<(JobDto Job, bool Created)> SubmitAsync(string agentRef, string kind, JsonElement? body, string? clientJobId, int? priority, CancellationToken ct,
        WebhookRequest? webhook = null, Action<string>? queued = null)
    {
        var agent = await FindAgentAsync(agentRef, ct);
        var clientId = clientJobId is null ? null : Validate.Identifier(clientJobId, "jobId");
        if (body is not { ValueKind: JsonValueKind.Object } input)
        {
            throw AtelierException.InvalidInput("input", "must be an object (the generation request)");
        }

        var json = input.GetRawText();
        if (json.Length > MaxInputBytes)
        {
            throw AtelierException.InvalidInput("input", $"is larger than {MaxInputBytes} bytes");
        }

        var workflow = kind == ComfyWorkflow.Kind;
        if (workflow)
        {
            ComfyWorkflow.Check(input, generation.Value);
            await safety.CheckPromptAsync(ComfyWorkflow.Texts(input), ct, "");
        }
        else
        {
            GenerationInput.Check(input, kind == "img2img", generation.Value, agent.Name);
            await safety.CheckPromptAsync(TextOf(input, "prompt"), ct, TextOf(input, "negative_prompt"));
        }

        var p = Validate.Range(priority, "priority", -100, 100, 0);
        var hook = await webhooks.ForJobAsync(webhook, ct);
        var model = workflow ? await WorkflowModelAsync(input, ct) : await resolver.ResolveAsync(GenerationInput.CheckpointOf(input), ct);
        if (!workflow && await resolver.ResolveNetworksAsync(TextOf(input, "prompt"), TextOf(input, "negative_prompt"), ct) is { Count: > 0 } networks)
        {
            model = model with { Networks = networks };
        }

        var scope = ClientScope;
        // The pictures go to the object store; the queued body names them.
        json = await JobInputs.StoreAsync(store, TenantId, json, ct);
        var newJob = new JobQueue.NewJob(TenantId, agent.Id, clientId, json, model.Key, p, options.Value.MaxAttempts, kind, Caller.CredentialId, Caller.AppId)
        {
            ModelJson = model.ToJson(),
            Webhook = hook,
            ClientScope = scope,
        };
        // Every submit is checked (the tenant config's maxConcurrentJobs always applies), so there is no unchecked path.
        var limits = await entitlements.ApplicableAsync(Caller.AppId, ct);
        Job job;
        bool created;
        if (limits.Count == 0
            // A retried submit finds its job before any limit is counted or any credit taken (it is created only when the
            // earlier one was purged in between, and is then announced below like any new job).
            || (clientId is not null && await db.Jobs.AsNoTracking().AnyAsync(j => j.ClientScope == scope && j.ClientJobId == clientId, ct)))
        {
            // No entitlement to count or charge: one insert, which checks the tenant's cap itself (ActiveJobs).
            (job, created) = await queue.EnqueueAsync(newJob, ct);
        }
        else
        {
            // The charge and the insert in one transaction. PostgreSQL may end it to break a cycle of waits (the insert at
            // the tenant's cap waits for a place row another submit holds, ActiveJobs): nothing of it was written (the
            // charge is raw updates, nothing is tracked), so the whole of it is made again.
            var images = workflow ? ComfyWorkflow.ImagesOf(input) : GenerationInput.ImagesOf(input);
            (job, created) = await DbErrors.AgainOnDeadlockAsync(db, async () =>
            {
                using (await provider.WriteTurnAsync(db, ct))
                await using (var tx = await db.Database.BeginTransactionAsync(ct))
                {
                    var charged = await entitlements.CheckAndChargeAsync(limits, Caller.AppId, images, ct);
                    var made = await queue.EnqueueAsync(newJob with { Charged = charged }, ct);
                    await tx.CommitAsync(ct);
                    return made;
                }
            });
        }

        if (created)
        {
            queued?.Invoke(job.Id);
            await notifier.QueuedAsync(db, job.AgentId, job.ModelKey, ct);
        }

        return (Shown(job), created);
    }

    /// <summary>
    /// A workflow's model in the registry, for scheduling (the ComfyUI worker loads what the workflow names): the
    /// tenant's checkpoint of the name its CheckpointLoaderSimple loads, else the caller's default one.
    /// </summary>
    private async Task<Models.ResolvedModel> WorkflowModelAsync(JsonElement input, CancellationToken ct)
    {
        if (ComfyWorkflow.CheckpointOf(input) is { } named)
        {
            try
            {
                return await resolver.ResolveAsync(named, ct);
            }
            catch (AtelierException e) when (e.Code == ErrorCatalog.b_model_modelnotexist)
            {
                // Not in the registry under that name: ComfyUI may still have it.
            }
        }

        return await resolver.ResolveAsync(null, ct);
    }

    private static string TextOf(JsonElement input, string name) =>
        input.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";

    public async Task<JobDto> GetAsync(string agentRef, string jobRef, CancellationToken ct) => Shown(await FindAsync(agentRef, jobRef, ct));

    /// <summary>The job as the caller may see it: an end user's session is not shown where its app's webhooks go.</summary>
    private JobDto Shown(Job job) => Caller.Kind == CallerKind.Session ? ToDto(job) with { Webhook = null, WebhookEvents = null } : ToDto(job);

    public async Task<Page<JobDto>> ListAsync(string agentRef, string? state, PageRequest page, CancellationToken ct)
    {
        var agent = await FindAgentAsync(agentRef, ct);
        var q = Visible().Where(j => j.AgentId == agent.Id);
        if (state is not null)
        {
            if (!JobStates.All.Contains(state))
            {
                throw AtelierException.InvalidInput("state", $"must be one of {string.Join(", ", JobStates.All)}");
            }

            q = q.Where(j => j.State == state);
        }

        return await q.OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).ToPageAsync(page, Shown, ct);
    }

    /// <summary>A queued job is canceled at once; a running one is flagged for its worker to stop (aborted if it does not); a finished one stays.</summary>
    public async Task<JobDto> CancelAsync(string agentRef, string jobRef, CancellationToken ct)
    {
        var job = await FindAsync(agentRef, jobRef, ct);
        await CancelCoreAsync(job.Id, ct);
        return Shown(await FindAsync(agentRef, job.Id, ct));
    }

    /// <summary>A1111's interrupt: stops the caller's own queued and running jobs.</summary>
    public async Task<int> InterruptOwnAsync(CancellationToken ct)
    {
        var own = Caller.CredentialId;
        var ids = await db.Jobs.AsNoTracking().Where(j => j.CallerId == own && (j.State == JobStates.Queued || j.State == JobStates.Running))
            .Select(j => j.Id).ToListAsync(ct);
        foreach (var id in ids)
        {
            await CancelCoreAsync(id, ct);
        }

        return ids.Count;
    }

    private async Task CancelCoreAsync(string jobId, CancellationToken ct)
    {
        if (await queue.CancelQueuedAsync(jobId, TimeSpan.FromHours(options.Value.ResultRetentionHours), ct))
        {
            await notifier.ChangedAsync(db, jobId, ct);
            return;
        }

        await queue.RequestStopAsync(jobId, ct);
    }

    public async Task<JobResultDto> ResultAsync(string agentRef, string jobRef, CancellationToken ct) => ToResult(await FindAsync(agentRef, jobRef, ct));

    /// <summary>The job as it stands now, by id within the request's tenant (for waiting loops).</summary>
    public async Task<JobDto> ReloadAsync(string jobId, CancellationToken ct) => Shown(await ByIdAsync(jobId, ct));

    /// <summary>A task (a job of any of the caller's agents) by its id or the caller's own client job id.</summary>
    public async Task<JobDto> FindTaskAsync(string taskId, CancellationToken ct) => Shown(await FindAsync(null, taskId, ct));

    public async Task<JobResultDto> TaskResultAsync(string taskId, CancellationToken ct) => ToResult(await FindAsync(null, taskId, ct));

    public async Task<JobDto> CancelTaskAsync(string taskId, CancellationToken ct)
    {
        var job = await FindAsync(null, taskId, ct);
        return await CancelAsync(job.AgentId, job.Id, ct);
    }

    /// <summary>What the worker reported for a finished job (its images' keys, A1111's info and parameters), or null.</summary>
    public async Task<WorkerResult?> WorkerResultAsync(string jobId, CancellationToken ct) => ResultOf(await ByIdAsync(jobId, ct));

    private async Task<Job> ByIdAsync(string jobId, CancellationToken ct) =>
        await db.Jobs.AsNoTracking().FirstOrDefaultAsync(j => j.Id == jobId, ct)
        ?? throw new AtelierException(ErrorCatalog.b_agent_jobnotfound, errCode: ErrCodes.JobNotFound, errMessage: jobId);

    /// <summary>The caller's newest job (A1111's progress reports on "the current task" of its caller).</summary>
    public async Task<JobDto?> NewestOwnAsync(CancellationToken ct)
    {
        var own = Caller.CredentialId;
        var job = await db.Jobs.AsNoTracking().Where(j => j.CallerId == own).OrderByDescending(j => j.CreatedAt).ThenByDescending(j => j.Id).FirstOrDefaultAsync(ct);
        return job is null ? null : Shown(job);
    }

    /// <summary>The stored bytes of one image a worker reported (for A1111's answers).</summary>
    public Task<Stream> OpenStoredImageAsync(WorkerImage image, CancellationToken ct) => store.OpenReadAsync(image.Key, ct);

    public Task<byte[]> ReadStoredImageAsync(WorkerImage image, CancellationToken ct) => store.ReadAllBytesAsync(image.Key, ct);

    /// <summary>The bytes of one image of a finished job.</summary>
    public async Task<Stream> OpenImageAsync(string? agentRef, string jobRef, int index, CancellationToken ct)
    {
        var job = await FindAsync(agentRef, jobRef, ct);
        var image = ImagesOf(job).ElementAtOrDefault(index)
                    ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"index: job {job.Id} has no image {index}" }, status: 404);
        return await store.OpenReadAsync(image.Key, ct);
    }

    /// <summary>
    /// The latest live preview of a job the caller may see, with its step: only while the job runs (a finished job has its
    /// images), else <c>b_agent_jobnotfound</c> 404 with errCode <c>no_preview</c>.
    /// </summary>
    public async Task<(byte[] Png, int Step)> PreviewAsync(string? agentRef, string jobRef, CancellationToken ct)
    {
        var job = await FindAsync(agentRef, jobRef, ct);
        var preview = job.State == JobStates.Running && job.PreviewStep is not null
            ? await db.JobPreviews.AsNoTracking().Where(p => p.JobId == job.Id && p.Attempt == job.Attempt).Select(p => new { p.Png, p.Step }).FirstOrDefaultAsync(ct)
            : null;
        return preview is null
            ? throw new AtelierException(ErrorCatalog.b_agent_jobnotfound, errCode: ErrCodes.NoPreview, errMessage: $"job {job.Id} has no live preview now")
            : (preview.Png, preview.Step);
    }

    /// <summary>The images of a result as the worker stored them.</summary>
    internal static IReadOnlyList<WorkerImage> ImagesOf(Job job) => ResultOf(job)?.Images ?? [];

    internal static WorkerResult? ResultOf(Job job) => job.ResultJson is null ? null : JsonSerializer.Deserialize<WorkerResult>(job.ResultJson, AtelierJson.Options);

    /// <summary>
    /// Whose idempotency keys (client job ids) a submit uses and a lookup searches first: a session's own, else the
    /// calling token's app's (a tenant admin token's too), and <c>*</c> for the platform admin. Keys are unique per
    /// scope, so no other app or session can take one first.
    /// </summary>
    private string ClientScope => Caller.Kind switch
    {
        CallerKind.Session => Caller.CredentialId,
        CallerKind.PlatformAdmin => "*",
        _ => Caller.AppId ?? "*",
    };

    /// <summary>
    /// The jobs the caller may see: a session its own, an app-scoped token its app's (its sessions' included), the
    /// tenant admin and the platform admin every job of the tenant.
    /// </summary>
    private IQueryable<Job> Visible()
    {
        var q = db.Jobs.AsNoTracking();
        if (Caller.Kind == CallerKind.Session)
        {
            var own = Caller.CredentialId;
            return q.Where(j => j.CallerId == own);
        }

        if (!Caller.Has(Contracts.Identity.TokenScope.Admin))
        {
            var app = Caller.AppId;
            return q.Where(j => j.AppId == app);
        }

        return q;
    }

    /// <summary>
    /// A job the caller may see, by its id or by a client job id: the caller's own scope first, then (for a caller that
    /// sees other scopes: an app its sessions', the tenant admin everyone's) the oldest visible job with that client id.
    /// </summary>
    private async Task<Job> FindAsync(string? agentRef, string jobRef, CancellationToken ct)
    {
        var q = Visible();
        if (agentRef is not null)
        {
            var agent = await FindAgentAsync(agentRef, ct);
            q = q.Where(j => j.AgentId == agent.Id);
        }

        var scope = ClientScope;
        return await q.FirstOrDefaultAsync(j => j.Id == jobRef, ct)
               ?? await q.FirstOrDefaultAsync(j => j.ClientScope == scope && j.ClientJobId == jobRef, ct)
               ?? await q.Where(j => j.ClientJobId == jobRef).OrderBy(j => j.CreatedAt).ThenBy(j => j.Id).FirstOrDefaultAsync(ct)
               ?? throw new AtelierException(ErrorCatalog.b_agent_jobnotfound, errCode: ErrCodes.JobNotFound, errMessage: jobRef);
    }

    public static JobDto ToDto(Job j)
    {
        var model = ResolvedModel.FromJson(j.ModelJson);
        // A model fetch reported by an earlier attempt is not this attempt's.
        var delivery = JobDelivery.ReadFrom(j.ModelJson) is { } d && d.Attempt == j.Attempt ? d : null;
        return new(j.Id, j.ClientJobId, j.AgentId, j.Kind, j.State, j.Attempt, j.MaxAttempts, j.Priority,
            model is null ? null : new JobModelDto(model.VersionId, model.Name, model.Title),
            new JobProgressDto(j.Progress, j.ProgressStep, j.ProgressSteps, delivery?.Stage, delivery?.BytesDone, delivery?.BytesTotal,
                JobStates.IsTerminal(j.State) ? null : j.PreviewStep),
            j.CreatedAt, j.StartedAt, j.FinishedAt, j.ErrorCode, j.ErrorMessage, j.CancelRequested, j.ResultExpiresAt,
            j.WebhookUrl, j.WebhookUrl is null ? null : WebhookEvents.Parse(j.WebhookEvents));
    }

    public static JobResultDto ToResult(Job j)
    {
        if (JobStates.IsTerminal(j.State) && j.ResultJson is null && j.State == JobStates.Succeeded)
        {
            throw new AtelierException(ErrorCatalog.b_agent_jobnotfound, errCode: ErrCodes.ResultExpired,
                errMessage: $"the result of job {j.Id} was kept until {j.ResultExpiresAt:O} and is gone");
        }

        var result = ResultOf(j);
        var images = (result?.Images ?? []).Select((im, i) => new JobImageDto(i, ApiLinks.TaskImage(j.Id, i), im.Seed, im.Infotext, im.Sha256, im.Size)).ToList();
        return new JobResultDto(j.Id, j.State, images, result?.Info, j.ErrorCode, j.ErrorMessage);
    }
}
