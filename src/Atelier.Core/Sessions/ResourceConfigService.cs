using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Sessions;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Sessions;

/// <summary>
/// Dedicated resource specs (engine, instance type, model, instance count) that sessions can ask for. Starting the
/// instances comes with the runtime; the specs are stored and validated now.
/// </summary>
public sealed class ResourceConfigService(AtelierDb db, RequestContext ctx, TimeProvider clock)
{
    public static readonly string[] Engines = ["builtin", "a1111", "comfyui"];

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<ResourceConfigDto> CreateAsync(ResourceConfigRequest req, CancellationToken ct)
    {
        if (req.Id is not null)
        {
            throw new AtelierException(ErrorCatalog.p_resource_resourceconfigidnotsupportmodify, errCode: ErrCodes.IdAssignedByServer,
                errMessage: "the id of a resource config is assigned by the server");
        }

        var rc = new ResourceConfig { Id = Ids.New("rc", clock), TenantId = TenantId, Name = "", Engine = "", InstanceType = "", CreatedAt = Now };
        await ApplyAsync(rc, req, ct);
        db.ResourceConfigs.Add(rc);
        Audit.Record(db, ctx, clock, "resource_config.create", "resource_config", rc.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => new AtelierException(ErrorCatalog.p_common_inputinvalid,
            new Dictionary<string, string> { ["Input"] = $"name: resource config {rc.Name} already exists" }, status: 409), ct);
        return ToDto(rc);
    }

    public async Task<ResourceConfigDto> GetAsync(string id, CancellationToken ct) => ToDto(await FindAsync(id, false, ct));

    public Task<Page<ResourceConfigDto>> ListAsync(PageRequest page, CancellationToken ct) =>
        db.ResourceConfigs.AsNoTracking().OrderBy(r => r.CreatedAt).ThenBy(r => r.Id).ToPageAsync(page, ToDto, ct);

    /// <summary>Replaces the spec. A body naming another id is <c>p_resource_resourceconfigidnotsupportmodify</c>: ids never change.</summary>
    public async Task<ResourceConfigDto> UpdateAsync(string id, ResourceConfigRequest req, CancellationToken ct)
    {
        var rc = await FindAsync(id, true, ct);
        if (req.Id is not null && req.Id != rc.Id)
        {
            throw new AtelierException(ErrorCatalog.p_resource_resourceconfigidnotsupportmodify, errCode: ErrCodes.IdChange,
                errMessage: $"{rc.Id} cannot become {req.Id}");
        }

        await ApplyAsync(rc, req, ct);
        Audit.Record(db, ctx, clock, "resource_config.update", "resource_config", rc.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => new AtelierException(ErrorCatalog.p_common_inputinvalid,
            new Dictionary<string, string> { ["Input"] = $"name: resource config {rc.Name} already exists" }, status: 409), ct);
        return ToDto(rc);
    }

    public async Task DeleteAsync(string id, CancellationToken ct)
    {
        var rc = await FindAsync(id, true, ct);
        db.ResourceConfigs.Remove(rc);
        Audit.Record(db, ctx, clock, "resource_config.delete", "resource_config", rc.Id, TenantId);
        await db.SaveChangesAsync(ct);
    }

    private async Task ApplyAsync(ResourceConfig rc, ResourceConfigRequest req, CancellationToken ct)
    {
        rc.Name = Validate.Name(req.Name, "name");
        rc.Engine = req.Engine is { } e && Engines.Contains(e) ? e
            : throw AtelierException.InvalidInput("engine", "must be one of " + string.Join(", ", Engines));
        rc.InstanceType = Validate.Name(req.InstanceType, "instanceType");
        rc.InstanceCount = Validate.Range(req.InstanceCount, "instanceCount", 1, 64, 1);
        if (req.ModelId is not null && !await db.Models.AnyAsync(m => m.Id == req.ModelId, ct))
        {
            throw AtelierException.With(ErrorCatalog.b_model_modelnotexist, "ID", req.ModelId);
        }

        rc.ModelId = req.ModelId;
        rc.AgentId = await AgentRefs.IdAsync(db, req.AgentId, ct);
        if (req.FunctionTemplate is { } template)
        {
            rc.FunctionTemplateId = await db.FunctionTemplates.AsNoTracking().Where(t => t.Id == template || t.Name == template).Select(t => t.Id).FirstOrDefaultAsync(ct)
                                    ?? throw new AtelierException(ErrorCatalog.p_function_invalidtemplateid, errCode: ErrCodes.TemplateNotFound, errMessage: template);
            if (req.InstanceParameters is { ValueKind: not (System.Text.Json.JsonValueKind.Object or System.Text.Json.JsonValueKind.Null or System.Text.Json.JsonValueKind.Undefined) })
            {
                throw AtelierException.InvalidInput("instanceParameters", "must be an object");
            }

            rc.InstanceParametersJson = req.InstanceParameters is { ValueKind: System.Text.Json.JsonValueKind.Object } p ? p.GetRawText() : "{}";
        }
        else
        {
            rc.FunctionTemplateId = null;
            rc.InstanceParametersJson = null;
        }

        rc.UpdatedAt = Now;
    }


    private async Task<ResourceConfig> FindAsync(string id, bool tracking, CancellationToken ct)
    {
        var q = tracking ? db.ResourceConfigs : db.ResourceConfigs.AsNoTracking();
        return await q.FirstOrDefaultAsync(r => r.Id == id, ct)
               ?? throw new AtelierException(ErrorCatalog.b_session_resourceconfigidnotvalid, status: 404, errCode: ErrCodes.ResourceConfigNotFound, errMessage: id);
    }

    private static ResourceConfigDto ToDto(ResourceConfig r) =>
        new(r.Id, r.Name, r.Engine, r.InstanceType, r.ModelId, r.InstanceCount, r.CreatedAt, r.UpdatedAt, r.AgentId, r.FunctionTemplateId,
            r.InstanceParametersJson is null ? null : System.Text.Json.JsonDocument.Parse(r.InstanceParametersJson).RootElement.Clone());
}
