using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Core.Jobs;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Agents;

/// <summary>A tenant's agents, their versions and the scale templates those follow.</summary>
public sealed class AgentService(AtelierDb db, RequestContext ctx, TimeProvider clock, JobService jobs, AgentCache agents)
{
    private const int MaxArgs = 64;
    private const int MaxEnvironment = 64;

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<AgentInfoDto> CreateAgentAsync(AgentRequest req, CancellationToken ct)
    {
        var agent = new Agent
        {
            Id = Ids.New("agt", clock), TenantId = TenantId, Name = Validate.Label(req.Name, "name", 63), Description = Validate.Optional(req.Description, "description"),
            CreatedAt = Now, UpdatedAt = Now,
        };
        db.Agents.Add(agent);
        Audit.Record(db, ctx, clock, "agent.create", "agent", agent.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"agent {agent.Name} already exists", 409), ct);
        return (await ToDtosAsync([agent], ct))[0];
    }

    public async Task<AgentInfoDto> UpdateAgentAsync(string agentRef, AgentRequest req, CancellationToken ct)
    {
        var agent = await TrackedAsync(agentRef, ct);
        if (req.Name is not null && req.Name != agent.Name)
        {
            throw AtelierException.InvalidInput("name", "an agent keeps its name (jobs and tokens name it); make a new agent instead");
        }

        agent.Description = Validate.Optional(req.Description, "description");
        agent.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "agent.update", "agent", agent.Id, null);
        await db.SaveChangesAsync(ct);
        return (await ToDtosAsync([agent], ct))[0];
    }

    public async Task<AgentInfoDto> GetAgentAsync(string agentRef, CancellationToken ct) =>
        (await ToDtosAsync([await jobs.FindAgentAsync(agentRef, ct)], ct))[0];

    public async Task<IReadOnlyList<AgentInfoDto>> ListAgentsAsync(CancellationToken ct) =>
        await ToDtosAsync(await db.Agents.AsNoTracking().OrderBy(a => a.CreatedAt).ThenBy(a => a.Id).ToListAsync(ct), ct);

    /// <summary>An agent goes only when nothing needs it: not the default one, no units, no versions, no unfinished job.</summary>
    public async Task DeleteAgentAsync(string agentRef, CancellationToken ct)
    {
        var agent = await TrackedAsync(agentRef, ct);
        var defaultId = await DefaultAgentIdAsync(ct);
        string? why = agent.Id == defaultId ? "it is the tenant's default agent"
            : await db.ComputingUnits.AnyAsync(u => u.AgentId == agent.Id, ct) ? "it has computing units"
            : await db.AgentVersions.AnyAsync(v => v.AgentId == agent.Id, ct) ? "it has versions"
            : await db.Jobs.AnyAsync(j => j.AgentId == agent.Id && (j.State == JobStates.Queued || j.State == JobStates.Running), ct) ? "it has unfinished jobs"
            : await db.ApiTokens.AnyAsync(t => t.AgentId == agent.Id, ct) ? "a token sends its jobs to it"
            : await db.ResourceConfigs.AnyAsync(r => r.AgentId == agent.Id, ct) ? "a resource config sends its jobs to it"
            : null;
        if (why is not null)
        {
            throw AtelierException.InvalidInput("agentId", $"agent {agent.Name} cannot be deleted: {why}", 409);
        }

        db.Agents.Remove(agent);
        Audit.Record(db, ctx, clock, "agent.delete", "agent", agent.Id, null);
        await db.SaveChangesAsync(ct);
        agents.Remove($"{TenantId}\n{agent.Id}");
        agents.Remove($"{TenantId}\n{agent.Name}");
    }

    /// <summary>Makes the agent the tenant's default: where A1111 and predict calls go when neither token nor session names one.</summary>
    public async Task<AgentInfoDto> MakeDefaultAsync(string agentRef, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        var config = await db.TenantConfigs.FirstOrDefaultAsync(ct)
                     ?? throw new AtelierException(ErrorCatalog.b_user_tenantconfignotfound);
        config.DefaultAgentId = agent.Id;
        config.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "agent.default", "agent", agent.Id, null);
        await db.SaveChangesAsync(ct);
        return (await ToDtosAsync([agent], ct))[0];
    }

    public async Task<AgentVersionDto> CreateVersionAsync(string agentRef, AgentVersionRequest req, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        if (string.IsNullOrWhiteSpace(req.VersionName))
        {
            throw new AtelierException(ErrorCatalog.p_agent_versionnameshouldnotblank, errCode: ErrCodes.VersionNameBlank, errMessage: "versionName is required");
        }

        if (string.IsNullOrWhiteSpace(req.Image))
        {
            throw new AtelierException(ErrorCatalog.p_agent_imageshouldnotblank, errCode: ErrCodes.ImageBlank,
                errMessage: "image is required: the worker image a kubernetes region runs (a local region runs atelier worker itself)");
        }

        if (string.IsNullOrWhiteSpace(req.AutoScaleTemplateId))
        {
            throw new AtelierException(ErrorCatalog.p_agent_autoscaletemplateidshouldnotblank, errCode: ErrCodes.ScaleTemplateBlank,
                errMessage: "autoScaleTemplateId is required (POST /api/v1/scale-templates)");
        }

        var template = await FindTemplateAsync(req.AutoScaleTemplateId, ct);
        var image = req.Image.Trim();
        if (image.Length > 1024 || image.Any(char.IsWhiteSpace))
        {
            throw AtelierException.InvalidInput("image", "must be an image reference without spaces, at most 1024 characters");
        }

        var engine = req.Engine ?? "builtin";
        if (!WorkerEngines.IsValid(engine))
        {
            throw AtelierException.InvalidInput("engine", $"must be builtin, a1111=URL, comfyui=URL or noop[=ms], not '{engine}'");
        }

        var args = req.Args ?? [];
        if (args.Count > MaxArgs || args.Any(a => a is null || a.Length > 1024) || args.Any(WorkerEngines.Reserved))
        {
            throw AtelierException.InvalidInput("args", $"at most {MaxArgs} arguments of up to 1024 characters, without {string.Join(", ", WorkerEngines.ReservedOptions)} (the platform sets those)");
        }

        var env = req.Environment ?? new Dictionary<string, string>();
        if (env.Count > MaxEnvironment || env.Any(e => !WorkerEngines.IsEnvName(e.Key) || e.Value is null || e.Value.Length > 4096 || e.Key.StartsWith("ATELIER_WORKER", StringComparison.Ordinal)))
        {
            throw AtelierException.InvalidInput("environment", $"at most {MaxEnvironment} variables (names [A-Za-z_][A-Za-z0-9_]*, not ATELIER_WORKER*), values up to 4096 characters");
        }

        var version = new AgentVersion
        {
            Id = Ids.New("agv", clock), TenantId = TenantId, AgentId = agent.Id, VersionName = Validate.Name(req.VersionName, "versionName"), Image = image,
            Engine = engine, ArgsJson = JsonSerializer.Serialize(args), EnvJson = JsonSerializer.Serialize(env), ScaleTemplateId = template.Id,
            Description = Validate.Optional(req.Description, "description"), CreatedAt = Now,
        };
        db.AgentVersions.Add(version);
        Audit.Record(db, ctx, clock, "agent_version.create", "agent_version", version.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("versionName", $"agent {agent.Name} already has version {version.VersionName}", 409), ct);
        return ToDto(version);
    }

    public async Task<Page<AgentVersionDto>> ListVersionsAsync(string agentRef, PageRequest page, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        return await db.AgentVersions.AsNoTracking().Where(v => v.AgentId == agent.Id).OrderByDescending(v => v.CreatedAt).ThenBy(v => v.Id)
            .ToPageAsync(page, ToDto, ct);
    }

    public async Task<AgentVersionDto> GetVersionAsync(string agentRef, string versionId, CancellationToken ct) =>
        ToDto(await FindVersionAsync(agentRef, versionId, ct));

    public async Task DeleteVersionAsync(string agentRef, string versionId, CancellationToken ct)
    {
        var version = await FindVersionAsync(agentRef, versionId, ct);
        if (await db.ComputingUnits.AnyAsync(u => u.AgentVersionId == version.Id, ct))
        {
            throw AtelierException.InvalidInput("versionId", $"version {version.VersionName} is used by a computing unit", 409);
        }

        db.AgentVersions.Remove(version);
        Audit.Record(db, ctx, clock, "agent_version.delete", "agent_version", version.Id, null);
        await db.SaveChangesAsync(ct);
    }

    public async Task<AgentVersion> FindVersionAsync(string agentRef, string versionId, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        return await db.AgentVersions.FirstOrDefaultAsync(v => v.Id == versionId && v.AgentId == agent.Id, ct)
               ?? throw AtelierException.InvalidInput("versionId", $"agent {agent.Name} has no version {versionId}", 404);
    }

    public async Task<ScaleTemplateDto> CreateTemplateAsync(ScaleTemplateRequest req, CancellationToken ct)
    {
        var t = new ScaleTemplate { Id = Ids.New("sct", clock), TenantId = TenantId, Name = Validate.Name(req.Name, "name"), CreatedAt = Now };
        Apply(t, req, fresh: true);
        db.ScaleTemplates.Add(t);
        Audit.Record(db, ctx, clock, "scale_template.create", "scale_template", t.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"scale template {t.Name} already exists", 409), ct);
        return ToDto(t);
    }

    public async Task<ScaleTemplateDto> UpdateTemplateAsync(string id, ScaleTemplateRequest req, CancellationToken ct)
    {
        var t = await FindTemplateAsync(id, ct);
        t.Name = req.Name is null ? t.Name : Validate.Name(req.Name, "name");
        Apply(t, req, fresh: false);
        Audit.Record(db, ctx, clock, "scale_template.update", "scale_template", t.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"scale template {t.Name} already exists", 409), ct);
        return ToDto(t);
    }

    public async Task<ScaleTemplateDto> GetTemplateAsync(string id, CancellationToken ct) => ToDto(await FindTemplateAsync(id, ct));

    public Task<Page<ScaleTemplateDto>> ListTemplatesAsync(PageRequest page, CancellationToken ct) =>
        db.ScaleTemplates.AsNoTracking().OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).ToPageAsync(page, ToDto, ct);

    public async Task DeleteTemplateAsync(string id, CancellationToken ct)
    {
        var t = await FindTemplateAsync(id, ct);
        if (await db.AgentVersions.AnyAsync(v => v.ScaleTemplateId == t.Id, ct))
        {
            throw AtelierException.InvalidInput("id", $"scale template {t.Name} is used by an agent version", 409);
        }

        db.ScaleTemplates.Remove(t);
        Audit.Record(db, ctx, clock, "scale_template.delete", "scale_template", t.Id, null);
        await db.SaveChangesAsync(ct);
    }

    public async Task<ScaleTemplate> FindTemplateAsync(string id, CancellationToken ct) =>
        await db.ScaleTemplates.FirstOrDefaultAsync(t => t.Id == id || t.Name == id, ct)
        ?? throw new AtelierException(ErrorCatalog.b_agent_scaletemplatenotexist, errCode: ErrCodes.ScaleTemplateNotFound, errMessage: $"scale template {id} does not exist");

    /// <summary>The tenant's default agent: the one its config names, else the one named <c>default</c>.</summary>
    private async Task<string?> DefaultAgentIdAsync(CancellationToken ct) =>
        await db.TenantConfigs.AsNoTracking().Select(c => c.DefaultAgentId).FirstOrDefaultAsync(ct)
        ?? await db.Agents.AsNoTracking().Where(a => a.Name == JobService.DefaultAgent).Select(a => a.Id).FirstOrDefaultAsync(ct);

    private void Apply(ScaleTemplate t, ScaleTemplateRequest req, bool fresh)
    {
        t.MinReplicas = Validate.Range(req.MinReplicas, "minReplicas", 0, 1000, fresh ? 0 : t.MinReplicas);
        t.MaxReplicas = Validate.Range(req.MaxReplicas, "maxReplicas", 0, 1000, fresh ? 10 : t.MaxReplicas);
        if (t.MaxReplicas < t.MinReplicas)
        {
            throw AtelierException.InvalidInput("maxReplicas", $"must be at least minReplicas ({t.MinReplicas})");
        }

        var busy = req.TargetBusySlots ?? (fresh ? 0 : t.TargetBusySlots);
        if (double.IsNaN(busy) || busy < 0 || busy > 64)
        {
            throw AtelierException.InvalidInput("targetBusySlots", "must be 0 (every slot of a replica) to 64");
        }

        t.TargetBusySlots = busy;
        t.ScaleUpWindowSeconds = Validate.Range(req.ScaleUpWindowSeconds, "scaleUpWindowSeconds", 0, 3600, fresh ? 0 : t.ScaleUpWindowSeconds);
        t.ScaleDownWindowSeconds = Validate.Range(req.ScaleDownWindowSeconds, "scaleDownWindowSeconds", 0, 86_400, fresh ? 60 : t.ScaleDownWindowSeconds);
        t.IdleSecondsBeforeZero = Validate.Range(req.IdleSecondsBeforeZero, "idleSecondsBeforeZero", 0, 86_400, fresh ? 300 : t.IdleSecondsBeforeZero);
        t.UpdatedAt = Now;
    }

    private async Task<Agent> TrackedAsync(string agentRef, CancellationToken ct)
    {
        var found = await jobs.FindAgentAsync(agentRef, ct);
        return await db.Agents.FirstAsync(a => a.Id == found.Id, ct);
    }

    private async Task<List<AgentInfoDto>> ToDtosAsync(IReadOnlyList<Agent> list, CancellationToken ct)
    {
        var ids = list.Select(a => a.Id).ToList();
        var units = await db.ComputingUnits.AsNoTracking().Where(u => ids.Contains(u.AgentId)).GroupBy(u => u.AgentId)
            .Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, ct);
        var counts = await db.Jobs.AsNoTracking().Where(j => ids.Contains(j.AgentId) && (j.State == JobStates.Queued || j.State == JobStates.Running))
            .GroupBy(j => new { j.AgentId, j.State }).Select(g => new { g.Key.AgentId, g.Key.State, Count = g.Count() }).ToListAsync(ct);
        return [.. list.Select(a => new AgentInfoDto(a.Id, a.Name, a.Description, units.ContainsKey(a.Id), units.GetValueOrDefault(a.Id),
            counts.Where(c => c.AgentId == a.Id && c.State == JobStates.Queued).Sum(c => c.Count),
            counts.Where(c => c.AgentId == a.Id && c.State == JobStates.Running).Sum(c => c.Count), a.CreatedAt, a.UpdatedAt == default ? a.CreatedAt : a.UpdatedAt))];
    }

    public static AgentVersionDto ToDto(AgentVersion v) =>
        new(v.Id, v.AgentId, v.VersionName, v.Image, v.Engine, JsonSerializer.Deserialize<List<string>>(v.ArgsJson) ?? [],
            JsonSerializer.Deserialize<Dictionary<string, string>>(v.EnvJson) ?? [], v.ScaleTemplateId, v.Description, v.CreatedAt);

    public static ScaleTemplateDto ToDto(ScaleTemplate t) =>
        new(t.Id, t.Name, t.MinReplicas, t.MaxReplicas, t.TargetBusySlots, t.ScaleUpWindowSeconds, t.ScaleDownWindowSeconds, t.IdleSecondsBeforeZero,
            t.CreatedAt, t.UpdatedAt);
}
