using System.Text.Json;
using System.Text.RegularExpressions;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Functions;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>The platform admin's side of the runtime: regions, kube configs and function templates.</summary>
public sealed partial class RuntimeCatalogService(AtelierDb db, RequestContext ctx, TimeProvider clock, MasterKeys keys, RuntimeRegions regions, FunctionRouteCache routes)
{
    public static readonly string[] Engines = ["builtin", "a1111", "comfyui", "custom"];
    private const int KubeConfigMax = 256 * 1024;

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    public async Task<RegionDto> CreateRegionAsync(RegionRequest req, CancellationToken ct)
    {
        var region = new Region { Name = Validate.Label(req.Name, "name"), Backend = "", CreatedAt = Now };
        await ApplyRegionAsync(region, req, ct);
        db.Regions.Add(region);
        Audit.Record(db, ctx, clock, "region.create", "region", region.Name, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"region {region.Name} already exists", 409), ct);
        routes.Clear();
        return ToDto(region);
    }

    public async Task<RegionDto> UpdateRegionAsync(string name, RegionRequest req, CancellationToken ct)
    {
        var region = await db.Regions.FirstOrDefaultAsync(r => r.Name == name, ct) ?? throw RegionNotFound(name);
        await ApplyRegionAsync(region, req, ct);
        Audit.Record(db, ctx, clock, "region.update", "region", region.Name, null);
        await db.SaveChangesAsync(ct);
        routes.Clear();
        return ToDto(region);
    }

    public async Task<RegionDto> GetRegionAsync(string name, CancellationToken ct) =>
        ToDto(await db.Regions.AsNoTracking().FirstOrDefaultAsync(r => r.Name == name, ct) ?? throw RegionNotFound(name));

    public Task<Page<RegionDto>> ListRegionsAsync(PageRequest page, CancellationToken ct) =>
        db.Regions.AsNoTracking().OrderBy(r => r.Name).ToPageAsync(page, ToDto, ct);

    /// <summary>A region still used by a function cannot go (its functions would be stranded).</summary>
    public async Task DeleteRegionAsync(string name, CancellationToken ct)
    {
        var region = await db.Regions.FirstOrDefaultAsync(r => r.Name == name, ct) ?? throw RegionNotFound(name);
        if (await db.Functions.IgnoreQueryFilters().AnyAsync(f => f.Region == name, ct))
        {
            throw AtelierException.InvalidInput("name", $"region {name} still has functions", 409);
        }

        db.Regions.Remove(region);
        Audit.Record(db, ctx, clock, "region.delete", "region", name, null);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    private async Task ApplyRegionAsync(Region region, RegionRequest req, CancellationToken ct)
    {
        var backend = Validate.Name(req.Backend, "backend");
        regions.Backend(backend); // unknown names are refused, listing the known ones
        region.Backend = backend;
        region.Namespace = req.Namespace is null ? region.Namespace : Validate.Label(req.Namespace, "namespace", 63);
        region.KubeConfigId = req.KubeConfigId;
        if (backend == "kubernetes" && req.KubeConfigId is null)
        {
            throw new AtelierException(ErrorCatalog.b_kube_kubeconfignotexist, errCode: ErrCodes.KubeConfigNotFound, errMessage: "a kubernetes region needs kubeConfigId");
        }

        if (req.KubeConfigId is { } id && !await db.KubeConfigs.AnyAsync(k => k.Id == id, ct))
        {
            throw new AtelierException(ErrorCatalog.b_kube_kubeconfignotexist, errCode: ErrCodes.KubeConfigNotFound, errMessage: id);
        }

        region.UpdatedAt = Now;
    }

    public async Task<KubeConfigDto> CreateKubeConfigAsync(KubeConfigRequest req, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name");
        var text = req.KubeConfig;
        if (string.IsNullOrWhiteSpace(text) || text.Length > KubeConfigMax || !text.Contains("clusters:", StringComparison.Ordinal))
        {
            throw AtelierException.InvalidInput("kubeConfig", $"must be a kube config (YAML with clusters:), at most {KubeConfigMax} characters");
        }

        var kc = new KubeConfig { Id = Ids.New("kc", clock), Name = name, ConfigCipher = SecretSeal.Seal(keys, KeyPurpose.RuntimeSecrets, text), CreatedAt = Now };
        db.KubeConfigs.Add(kc);
        Audit.Record(db, ctx, clock, "kube_config.create", "kube_config", kc.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"kube config {name} already exists", 409), ct);
        routes.Clear();
        return ToDto(kc);
    }

    public Task<Page<KubeConfigDto>> ListKubeConfigsAsync(PageRequest page, CancellationToken ct) =>
        db.KubeConfigs.AsNoTracking().OrderBy(k => k.CreatedAt).ThenBy(k => k.Id).ToPageAsync(page, ToDto, ct);

    public async Task DeleteKubeConfigAsync(string id, CancellationToken ct)
    {
        var kc = await db.KubeConfigs.FirstOrDefaultAsync(k => k.Id == id, ct)
                 ?? throw new AtelierException(ErrorCatalog.b_kube_kubeconfignotexist, errCode: ErrCodes.KubeConfigNotFound, errMessage: id);
        if (await db.Regions.AnyAsync(r => r.KubeConfigId == id, ct))
        {
            throw AtelierException.InvalidInput("id", $"kube config {id} is used by a region", 409);
        }

        db.KubeConfigs.Remove(kc);
        Audit.Record(db, ctx, clock, "kube_config.delete", "kube_config", id, null);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    public async Task<FunctionTemplateDto> CreateTemplateAsync(FunctionTemplateRequest req, CancellationToken ct)
    {
        var t = new FunctionTemplate { Id = Ids.New("ftp", clock), Name = "", Engine = "", CreatedAt = Now };
        ApplyTemplate(t, req, Now);
        db.FunctionTemplates.Add(t);
        Audit.Record(db, ctx, clock, "function_template.create", "function_template", t.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"function template {t.Name} already exists", 409), ct);
        routes.Clear();
        return ToDto(t);
    }

    public async Task<FunctionTemplateDto> UpdateTemplateAsync(string id, FunctionTemplateRequest req, CancellationToken ct)
    {
        var t = await FindTemplateAsync(id, ct);
        ApplyTemplate(t, req, Now);
        Audit.Record(db, ctx, clock, "function_template.update", "function_template", t.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"function template {t.Name} already exists", 409), ct);
        routes.Clear();
        return ToDto(t);
    }

    public async Task<FunctionTemplateDto> GetTemplateAsync(string id, CancellationToken ct) => ToDto(await FindTemplateAsync(id, ct));

    public Task<Page<FunctionTemplateDto>> ListTemplatesAsync(PageRequest page, CancellationToken ct) =>
        db.FunctionTemplates.AsNoTracking().OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).ToPageAsync(page, ToDto, ct);

    public async Task DeleteTemplateAsync(string id, CancellationToken ct)
    {
        var t = await FindTemplateAsync(id, ct);
        db.FunctionTemplates.Remove(t);
        Audit.Record(db, ctx, clock, "function_template.delete", "function_template", id, null);
        await db.SaveChangesAsync(ct);
        routes.Clear();
    }

    private async Task<FunctionTemplate> FindTemplateAsync(string id, CancellationToken ct) =>
        await db.FunctionTemplates.FirstOrDefaultAsync(t => t.Id == id, ct)
        ?? throw new AtelierException(ErrorCatalog.p_function_invalidtemplateid, status: 404, errCode: ErrCodes.TemplateNotFound, errMessage: id);

    private static void ApplyTemplate(FunctionTemplate t, FunctionTemplateRequest req, DateTime now)
    {
        t.Name = Validate.Label(req.Name, "name", 63);
        t.Description = Validate.Optional(req.Description, "description");
        t.Engine = req.Engine is { } e && Engines.Contains(e) ? e : throw AtelierException.InvalidInput("engine", "must be one of " + string.Join(", ", Engines));
        t.Image = Validate.Optional(req.Image, "image", 1024);
        t.Command = Validate.Optional(req.Command, "command", 1024);
        if (t.Image is null && t.Command is null)
        {
            throw AtelierException.InvalidInput("command", "a template needs a command (local) or an image (kubernetes)");
        }

        t.ArgsJson = JsonSerializer.Serialize(FunctionConfigs.CheckArgs(req.Args), AtelierJson.Options);
        t.EnvironmentJson = JsonSerializer.Serialize(FunctionConfigs.CheckEnvironment(req.Environment), AtelierJson.Options);
        t.Port = Validate.Range(req.Port, "port", 0, 65535, 0);
        t.HealthPath = FunctionConfigs.CheckHealthPath(req.HealthPath);
        t.Cpu = req.Cpu is { } cpu && (cpu < 0 || cpu > 256) ? throw AtelierException.InvalidInput("cpu", "must be between 0 and 256") : req.Cpu ?? 0;
        t.MemoryMb = Validate.Range(req.MemoryMb, "memoryMb", 0, 1048576, 0);
        t.Gpu = Validate.Range(req.Gpu, "gpu", 0, 16, 0);
        t.InstanceConcurrency = Validate.Range(req.InstanceConcurrency, "instanceConcurrency", 1, 1000, 1);
        t.TimeoutSeconds = Validate.Range(req.TimeoutSeconds, "timeoutSeconds", 1, 86400, 300);
        var schema = req.ParametersSchema is { ValueKind: not JsonValueKind.Undefined and not JsonValueKind.Null } s ? s.GetRawText() : "{}";
        try
        {
            JsonSchema.Load(schema);
        }
        catch (Exception ex) when (ex is JsonException or ArgumentException or InvalidOperationException)
        {
            throw AtelierException.InvalidInput("parametersSchema", ex.Message);
        }

        t.ParametersSchemaJson = schema;
        t.UpdatedAt = now;
    }

    private static AtelierException RegionNotFound(string name) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"region: {name} does not exist" }, status: 404, errCode: ErrCodes.RegionNotFound, errMessage: name);


    [GeneratedRegex(@"^\s*server:\s*(\S+)", RegexOptions.Multiline)]
    private static partial Regex ServerLine();

    public static RegionDto ToDto(Region r) => new(r.Name, r.Backend, r.KubeConfigId, r.Namespace, r.CreatedAt, r.UpdatedAt);

    private KubeConfigDto ToDto(KubeConfig k) =>
        new(k.Id, k.Name, SecretSeal.TryOpen(keys, KeyPurpose.RuntimeSecrets, k.ConfigCipher, out var text) ? ServerLine().Match(text).Groups[1].Value : null, k.CreatedAt);

    public static FunctionTemplateDto ToDto(FunctionTemplate t) =>
        new(t.Id, t.Name, t.Description, t.Engine, t.Image, t.Command, FunctionConfigs.Args(t.ArgsJson), FunctionConfigs.Environment(t.EnvironmentJson),
            t.Port, t.HealthPath, t.Cpu, t.MemoryMb, t.Gpu, t.InstanceConcurrency, t.TimeoutSeconds, JsonDocument.Parse(t.ParametersSchemaJson).RootElement.Clone(),
            t.BuiltIn, t.CreatedAt, t.UpdatedAt);
}
