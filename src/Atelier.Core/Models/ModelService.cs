using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Models;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Models;

/// <summary>
/// The tenant's model library: models (name unique per tenant, tags from the dictionary). A model named in the route
/// that does not exist is <c>b_model_modelidnotfound</c>.
/// </summary>
public sealed class ModelService(AtelierDb db, RequestContext ctx, TimeProvider clock, TagService dictionary)
{
    public static readonly string[] ModelTypes = ["checkpoint", "lora", "embedding", "vae", "controlnet", "upscaler", "onnx"];

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<ModelDto> CreateModelAsync(CreateModelRequest req, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name", 128);
        var type = req.Type is { } t && ModelTypes.Contains(t) ? t : throw AtelierException.InvalidInput("type", "must be one of " + string.Join(", ", ModelTypes));
        var tags = await dictionary.CheckTagsAsync(req.Tags, ct);
        await EnsureNameFreeAsync(name, null, ct);
        var model = new Model
        {
            Id = Ids.New("mdl", clock), TenantId = TenantId, Name = name, Type = type,
            Description = Validate.Optional(req.Description, "description"), Tags = tags, CreatedAt = Now, UpdatedAt = Now,
        };
        db.Models.Add(model);
        Audit.Record(db, ctx, clock, "model.create", "model", model.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", name), ct);
        return ModelMapping.ToDto(model);
    }

    public async Task<ModelDto> GetModelAsync(string id, CancellationToken ct) => ModelMapping.ToDto(await FindModelAsync(id, false, ct));

    public Task<Page<ModelDto>> ListModelsAsync(string? type, string? tag, string? name, PageRequest page, CancellationToken ct)
    {
        var q = db.Models.AsNoTracking();
        if (type is not null)
        {
            q = q.Where(m => m.Type == type);
        }

        if (tag is not null)
        {
            // Tags are stored one per line, so a line match is an exact tag match.
            q = q.Where(m => ("\n" + m.Tags + "\n").Contains("\n" + tag + "\n"));
        }

        if (name is not null)
        {
            q = q.Where(m => m.Name.Contains(name));
        }

        return q.OrderBy(m => m.CreatedAt).ThenBy(m => m.Id).ToPageAsync(page, ModelMapping.ToDto, ct);
    }

    public async Task<ModelDto> UpdateModelAsync(string id, UpdateModelRequest req, CancellationToken ct)
    {
        var model = await FindModelAsync(id, true, ct);
        if (req.Name is not null)
        {
            var name = Validate.Name(req.Name, "name", 128);
            await EnsureNameFreeAsync(name, model.Id, ct);
            model.Name = name;
        }

        if (req.Description is not null)
        {
            model.Description = Validate.Optional(req.Description, "description");
        }

        if (req.Tags is not null)
        {
            model.Tags = await dictionary.CheckTagsAsync(req.Tags, ct);
        }

        model.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "model.update", "model", model.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", model.Name), ct);
        return ModelMapping.ToDto(model);
    }

    public async Task DeleteModelAsync(string id, CancellationToken ct)
    {
        var model = await FindModelAsync(id, true, ct);
        await db.ModelFiles.Where(f => f.ModelId == model.Id).ExecuteDeleteAsync(ct);
        await db.ModelVersions.Where(v => v.ModelId == model.Id).ExecuteDeleteAsync(ct);
        db.Models.Remove(model);
        Audit.Record(db, ctx, clock, "model.delete", "model", model.Id, TenantId);
        await db.SaveChangesAsync(ct);
    }

    private async Task EnsureNameFreeAsync(string name, string? exceptId, CancellationToken ct)
    {
        if (await db.Models.AnyAsync(m => m.Name == name && m.Id != exceptId, ct))
        {
            throw AtelierException.With(ErrorCatalog.p_model_modelsyncmodelnameduplicate, "Model", name);
        }
    }

    internal async Task<Model> FindModelAsync(string id, bool tracking, CancellationToken ct)
    {
        var q = tracking ? db.Models : db.Models.AsNoTracking();
        return await q.FirstOrDefaultAsync(m => m.Id == id, ct)
               ?? throw new AtelierException(ErrorCatalog.b_model_modelidnotfound, errCode: ErrCodes.ModelNotFound, errMessage: id);
    }
}
