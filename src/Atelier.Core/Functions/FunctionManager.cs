using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>
/// A tenant's services and functions: create and update by template or through the open-function API, delete, list,
/// scale. Every change is applied to the backend before it is stored, so a failed create leaves no function, a
/// failed update leaves the previous one, and a failed delete leaves the function in place to delete again.
/// </summary>
public sealed class FunctionManager(AtelierDb db, RequestContext ctx, TimeProvider clock, FunctionDeployer deployer, FunctionRouteCache routes)
{
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    /// <summary>
    /// The service that holds the studio instances of dedicated sessions (one function per session, named after it). It is
    /// Atelier's: no one creates it, and the router never reaches it (only <c>/studio/{sessionId}/ui/</c> does, for that session).
    /// </summary>
    public const string StudioService = "atelier-studio";

    /// <summary>The function of a session's studio instance: the session id as a label (<c>ses_…</c> → <c>ses-…</c>).</summary>
    public static string StudioFunctionName(string sessionId) => sessionId.Replace('_', '-');

    /// <summary>The session whose studio instance a function of <see cref="StudioService"/> is.</summary>
    public static string StudioSessionId(string functionName) => functionName.Replace('-', '_');

    public async Task<ServiceDto> CreateServiceAsync(ServiceRequest req, CancellationToken ct)
    {
        if (req.Name == StudioService)
        {
            throw AtelierException.InvalidInput("name", $"{StudioService} is Atelier's own service (the studio instances of dedicated sessions)", 409);
        }

        var s = new FunctionService { Id = Ids.New("svc", clock), TenantId = TenantId, Name = Validate.Label(req.Name, "name"), Description = Validate.Optional(req.Description, "description"), CreatedAt = Now };
        db.FunctionServices.Add(s);
        Audit.Record(db, ctx, clock, "service.create", "service", s.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"service {s.Name} already exists", 409), ct);
        routes.Clear();
        return ToDto(s);
    }

    public Task<Page<ServiceDto>> ListServicesAsync(PageRequest page, CancellationToken ct) =>
        db.FunctionServices.AsNoTracking().OrderBy(s => s.CreatedAt).ThenBy(s => s.Id).ToPageAsync(page, ToDto, ct);

    public async Task<ServiceDto> GetServiceAsync(string service, CancellationToken ct) => ToDto(await FindServiceAsync(service, ct));

    public async Task DeleteServiceAsync(string service, CancellationToken ct)
    {
        var s = await FindServiceAsync(service, ct);
        if (await db.Functions.AnyAsync(f => f.ServiceId == s.Id, ct))
        {
            throw AtelierException.InvalidInput("service", $"service {s.Name} still has functions; delete them first", 409);
        }

        db.FunctionServices.Remove(s);
        Audit.Record(db, ctx, clock, "service.delete", "service", s.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    public async Task<FunctionDto> CreateByTemplateAsync(string service, CreateFunctionByTemplateRequest req, CancellationToken ct)
    {
        var s = await FindServiceAsync(service, ct);
        var template = await TemplateAsync(req.TemplateId, ct);
        var settings = await deployer.SettingsAsync(TenantId, ct);
        var (config, parameters) = FunctionConfigs.FromTemplate(template, req.InstanceParameters ?? JsonDocument.Parse("{}").RootElement, settings);
        var f = NewFunction(s, req.Name, req.Description, req.Region, config);
        f.TemplateId = template.Id;
        f.InstanceParametersJson = parameters.GetRawText();
        return await CreateAsync(s, f, ErrorCatalog.s_function_createfunctionerror, ct);
    }

    /// <summary>
    /// The studio instance of a dedicated session: its function in <see cref="StudioService"/> (made with the service when
    /// missing), created by the resource config's template; an existing one is kept (a second connect starts nothing).
    /// </summary>
    public async Task<RoutedFunction> EnsureStudioFunctionAsync(string sessionId, CancellationToken ct)
    {
        var (_, templateId, parametersJson) = await StudioReaper.DedicatedAsync(db, ctx, sessionId, ct);
        ctx.OperatorId = $"session:{sessionId}";
        var name = StudioFunctionName(sessionId);
        if (!await db.FunctionServices.AnyAsync(x => x.Name == StudioService, ct))
        {
            db.FunctionServices.Add(new FunctionService { Id = Ids.New("svc", clock), TenantId = TenantId, Name = StudioService, Description = "studio instances of dedicated sessions", CreatedAt = Now });
            Audit.Record(db, ctx, clock, "service.create", "service", StudioService, TenantId);
            try
            {
                await db.SaveChangesAsync(ct);
            }
            catch (DbUpdateException e) when (DbErrors.IsUniqueViolation(e))
            {
                db.ChangeTracker.Clear(); // made by a concurrent connect
            }
        }

        var s = await FindServiceAsync(StudioService, ct);
        if (await db.Functions.AsNoTracking().FirstOrDefaultAsync(f => f.ServiceId == s.Id && f.Name == name, ct) is { } existing)
        {
            return new RoutedFunction(existing, s.Name);
        }

        using var parameters = JsonDocument.Parse(parametersJson);
        try
        {
            await CreateByTemplateAsync(StudioService, new CreateFunctionByTemplateRequest(name, $"studio of session {sessionId}", templateId, parameters.RootElement, null), ct);
        }
        catch (AtelierException e) when (e.Status == 409)
        {
            db.ChangeTracker.Clear(); // a concurrent connect made it first
        }

        var made = await db.Functions.AsNoTracking().FirstAsync(f => f.ServiceId == s.Id && f.Name == name, ct);
        return new RoutedFunction(made, s.Name);
    }

    /// <summary>The calling session's studio function (for its UI): checked as <see cref="EnsureStudioFunctionAsync"/> checks the session.</summary>
    public async Task<string> StudioFunctionOfCallerAsync(string sessionId, CancellationToken ct)
    {
        var (session, _, _) = await StudioReaper.DedicatedAsync(db, ctx, sessionId, ct);
        return StudioFunctionName(session);
    }

    public async Task<FunctionDto> CreateOpenAsync(string service, OpenFunctionRequest req, CancellationToken ct)
    {
        var s = await FindServiceAsync(service, ct);
        var config = FunctionConfigs.FromOpenRequest(req, await deployer.SettingsAsync(TenantId, ct));
        return await CreateAsync(s, NewFunction(s, req.Name, req.Description, req.Region, config), ErrorCatalog.s_function_createopenfunctionerror, ct);
    }

    public async Task<FunctionDto> UpdateByTemplateAsync(string service, string name, UpdateFunctionByTemplateRequest req, CancellationToken ct)
    {
        var (s, f) = await FindAsync(service, name, true, ct);
        if (req.InstanceParameters is null or { ValueKind: JsonValueKind.Null or JsonValueKind.Undefined })
        {
            throw new AtelierException(ErrorCatalog.p_updatefunction_instanceparametersnotallowednull, errCode: ErrCodes.InstanceParametersMissing,
                errMessage: "instanceParameters is required on an update by template ({} keeps the template's defaults)");
        }

        var template = await TemplateAsync(req.TemplateId ?? f.TemplateId, ct);
        var (config, parameters) = FunctionConfigs.FromTemplate(template, req.InstanceParameters.Value, await deployer.SettingsAsync(TenantId, ct));
        f.TemplateId = template.Id;
        f.InstanceParametersJson = parameters.GetRawText();
        f.Description = req.Description is null ? f.Description : Validate.Optional(req.Description, "description");
        return await UpdateAsync(s, f, config, ErrorCatalog.s_function_updatefunctionerror, ct);
    }

    public async Task<FunctionDto> UpdateOpenAsync(string service, string name, OpenFunctionRequest req, CancellationToken ct)
    {
        var (s, f) = await FindAsync(service, name, true, ct);
        var config = FunctionConfigs.FromOpenRequest(req, await deployer.SettingsAsync(TenantId, ct));
        f.Description = req.Description is null ? f.Description : Validate.Optional(req.Description, "description");
        return await UpdateAsync(s, f, config, ErrorCatalog.s_function_updateopenfunctionerror, ct);
    }

    /// <summary>Stops the instances and removes the backend objects, then the rows. A backend failure leaves everything in place.</summary>
    public async Task DeleteAsync(string service, string name, bool open, CancellationToken ct)
    {
        var (_, f) = await FindAsync(service, name, true, ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        await RuntimeFailures.Call(open ? ErrorCatalog.s_function_deleteopenfunctionerror : ErrorCatalog.s_function_deletefunctionerror,
            () => backend.DeleteAsync(region, FunctionConfigs.KeyOf(f.Id), ct));
        db.Functions.Remove(f);
        Audit.Record(db, ctx, clock, "function.delete", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    public async Task<FunctionDto> GetAsync(string service, string name, CancellationToken ct)
    {
        var (s, f) = await FindAsync(service, name, false, ct);
        return FunctionDeployer.ToDto(f, s.Name);
    }

    /// <summary>The service's functions, each with what its backend reports now (<c>s_function_listopenfunctionerror</c> when a backend cannot say).</summary>
    public async Task<Page<FunctionDto>> ListAsync(string service, PageRequest page, CancellationToken ct)
    {
        var s = await FindServiceAsync(service, ct);
        var list = await db.Functions.AsNoTracking().Where(f => f.ServiceId == s.Id).OrderBy(f => f.CreatedAt).ThenBy(f => f.Id).ToPageAsync(page, f => f, ct);
        var items = new List<FunctionDto>(list.Items.Count);
        foreach (var f in list.Items)
        {
            var (region, backend) = await deployer.BackendOfAsync(f, ct);
            var seen = await RuntimeFailures.Call(ErrorCatalog.s_function_listopenfunctionerror, () => backend.ObserveAsync(region, FunctionConfigs.KeyOf(f.Id), ct));
            items.Add(FunctionDeployer.ToDto(f, s.Name, new FunctionRuntimeDto(seen.Phase.ToString().ToLowerInvariant(), seen.Reason, seen.Instances, seen.ReadyInstances)));
        }

        return new Page<FunctionDto>(items, list.PageNumber, list.PageSize, list.Total);
    }

    /// <summary>A manual instance count, kept until changed (0 returns to scaling by requests).</summary>
    public async Task<FunctionDto> ScaleAsync(string service, string name, ScaleRequest req, CancellationToken ct)
    {
        var (s, f) = await FindAsync(service, name, true, ct);
        RequireSynced(f);
        var instances = Validate.Range(req.Instances, "instances", 0, 64, -1);
        if (instances < 0)
        {
            throw AtelierException.InvalidInput("instances", "is required");
        }

        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        await RuntimeFailures.Call(ErrorCatalog.s_function_scaleopenfunctionerror, () => backend.ScaleAsync(region, FunctionConfigs.KeyOf(f.Id), instances, ct));
        f.ManualInstances = instances;
        f.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "function.scale", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return FunctionDeployer.ToDto(f, s.Name);
    }

    /// <summary><c>s_fc_stateinvalid</c> unless the reconciler last saw the function as desired.</summary>
    public static void RequireSynced(Function f)
    {
        if (f.State != "ready" || f.AppliedGeneration != f.Generation)
        {
            throw new AtelierException(ErrorCatalog.s_fc_stateinvalid, errCode: ErrCodes.FunctionNotSynced,
                errMessage: $"the function is {f.State}{(f.StateReason is null ? "" : ": " + f.StateReason)}") { RetryAfterSeconds = 5 };
        }
    }

    public async Task<FunctionService> FindServiceAsync(string service, CancellationToken ct) =>
        await db.FunctionServices.FirstOrDefaultAsync(s => s.Name == service || s.Id == service, ct)
        ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"service: {service} does not exist" },
            status: 404, errCode: ErrCodes.ServiceNotFound, errMessage: service);

    public async Task<(FunctionService Service, Function Function)> FindAsync(string service, string name, bool tracking, CancellationToken ct)
    {
        var s = await FindServiceAsync(service, ct);
        var q = tracking ? db.Functions : db.Functions.AsNoTracking();
        var f = await q.FirstOrDefaultAsync(f => f.ServiceId == s.Id && f.Name == name, ct)
                ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"function: {service}/{name} does not exist" },
                    status: 404, errCode: ErrCodes.FunctionNotFound, errMessage: $"{service}/{name}");
        return (s, f);
    }

    private Function NewFunction(FunctionService s, string? name, string? description, string? region, FunctionConfig config) => new()
    {
        Id = Ids.New("fn", clock), TenantId = TenantId, ServiceId = s.Id, Name = Validate.Label(name, "name"),
        Description = Validate.Optional(description, "description"), Region = region ?? RuntimeRegions.DefaultRegion,
        ConfigJson = FunctionConfigs.Write(config), State = "deploying", Generation = 1, CreatedAt = Now, UpdatedAt = Now,
    };

    private async Task<FunctionDto> CreateAsync(FunctionService s, Function f, ErrorCode operation, CancellationToken ct)
    {
        if (await db.Functions.AnyAsync(x => x.ServiceId == s.Id && x.Name == f.Name, ct))
        {
            throw AtelierException.InvalidInput("name", $"function {s.Name}/{f.Name} already exists", 409);
        }

        var spec = await deployer.SpecAsync(f, [], ct: ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        try
        {
            await backend.ApplyAsync(region, spec, ct);
        }
        catch (RuntimeException e)
        {
            // Nothing may stay behind: take away whatever the backend made before it failed.
            await ForgetAsync(backend, region, spec.Key);
            throw RuntimeFailures.Map(e, operation);
        }

        f.State = "ready";
        f.AppliedGeneration = f.Generation;
        db.Functions.Add(f);
        Audit.Record(db, ctx, clock, "function.create", "function", f.Id, TenantId);
        try
        {
            await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"function {s.Name}/{f.Name} already exists", 409), ct);
            routes.Clear();
        }
        catch
        {
            await ForgetAsync(backend, region, spec.Key);
            throw;
        }

        return FunctionDeployer.ToDto(f, s.Name);
    }

    private async Task<FunctionDto> UpdateAsync(FunctionService s, Function f, FunctionConfig config, ErrorCode operation, CancellationToken ct)
    {
        var previous = await deployer.SpecAsync(f, ct: ct);
        f.ConfigJson = FunctionConfigs.Write(config);
        var spec = await deployer.SpecAsync(f, ct: ct);
        var (region, backend) = await deployer.BackendOfAsync(f, ct);
        try
        {
            await backend.ApplyAsync(region, spec, ct);
        }
        catch (RuntimeException e)
        {
            // The stored function stays as it was; put the backend back to it too (best effort: the reconciler retries).
            try
            {
                await backend.ApplyAsync(region, previous, CancellationToken.None);
            }
            catch (RuntimeException)
            {
                await db.Functions.Where(x => x.Id == f.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.Generation, x => x.Generation + 1), CancellationToken.None);
            }

            throw RuntimeFailures.Map(e, operation);
        }

        f.Generation++;
        f.AppliedGeneration = f.Generation;
        f.State = "ready";
        f.StateReason = null;
        f.UpdatedAt = Now;
        // Written even when unchanged here: the reconciler may have recorded another state meanwhile.
        db.Entry(f).Property(x => x.State).IsModified = true;
        db.Entry(f).Property(x => x.StateReason).IsModified = true;
        Audit.Record(db, ctx, clock, "function.update", "function", f.Id, TenantId);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return FunctionDeployer.ToDto(f, s.Name);
    }

    private static async Task ForgetAsync(IRuntimeBackend backend, RuntimeRegion region, FunctionKey key)
    {
        try
        {
            await backend.DeleteAsync(region, key, CancellationToken.None);
        }
        catch (RuntimeException)
        {
            // Left behind only if the backend also refused the delete: its objects carry the function's labels (kubernetes)
            // or die with the server (local); nothing routes to them, since no row names them.
        }
    }

    private async Task<FunctionTemplate> TemplateAsync(string? id, CancellationToken ct) =>
        (id is null ? null : await db.FunctionTemplates.AsNoTracking().FirstOrDefaultAsync(t => t.Id == id || t.Name == id, ct))
        ?? throw new AtelierException(ErrorCatalog.p_function_invalidtemplateid, errCode: ErrCodes.TemplateNotFound, errMessage: id ?? "templateId is required");


    public static ServiceDto ToDto(FunctionService s) => new(s.Id, s.Name, s.Description, s.CreatedAt);
}
