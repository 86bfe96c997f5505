using System.Reflection;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Identity;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Tenancy;

/// <summary>Accounts, tenants and their lifecycle (create → init → activate ⇄ deactivate), tenant config and function settings.</summary>
public sealed class TenancyService(AtelierDb db, RequestContext ctx, TimeProvider clock, IOptions<TenancyOptions> options, AuthCache cache,
    Models.DownloadSignal downloads, Models.BuiltinModels builtins, TenantLanguages languages)
{
    /// <summary>The published schema of the global function settings.</summary>
    public static JsonSchema FunctionSettingsSchema { get; } = LoadSchema();

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    public async Task<AccountDto> CreateAccountAsync(CreateAccountRequest req, CancellationToken ct)
    {
        var uid = Validate.Identifier(req.Uid, "uid");
        var name = Validate.Name(req.Name ?? uid, "name");
        if (await db.Accounts.AnyAsync(a => a.Uid == uid, ct))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"uid: account {uid} already exists" }, status: 409);
        }

        var account = new Account { Uid = uid, Name = name, CreatedAt = Now };
        db.Accounts.Add(account);
        Audit.Record(db, ctx, clock, "account.create", "account", uid, null);
        await db.SaveChangesAsync(ct);
        return ToDto(account);
    }

    public async Task<AccountDto> GetAccountAsync(string uid, CancellationToken ct) =>
        ToDto(await db.Accounts.AsNoTracking().FirstOrDefaultAsync(a => a.Uid == uid, ct) ?? throw AccountNotFound(uid));

    public Task<Page<AccountDto>> ListAccountsAsync(PageRequest page, CancellationToken ct) =>
        db.Accounts.AsNoTracking().OrderBy(a => a.CreatedAt).ThenBy(a => a.Uid).ToPageAsync(page, ToDto, ct);

    public async Task<TenantDto> CreateTenantAsync(CreateTenantRequest req, CancellationToken ct)
    {
        var accountUid = Validate.Identifier(req.AccountUid, "accountUid");
        var name = Validate.Name(req.Name, "name");
        if (!await db.Accounts.AnyAsync(a => a.Uid == accountUid, ct))
        {
            throw AccountNotFound(accountUid);
        }

        var tenant = new Tenant { Id = Ids.New("ten", clock), AccountUid = accountUid, Name = name, State = TenantState.Created, CreatedAt = Now };
        db.Tenants.Add(tenant);
        Audit.Record(db, ctx, clock, "tenant.create", "tenant", tenant.Id, tenant.Id);
        await db.SaveChangesAsync(ct);
        return ToDto(tenant);
    }

    public async Task<TenantDto> GetTenantAsync(string id, CancellationToken ct) => ToDto(await FindTenantAsync(id, false, ct));

    public Task<Page<TenantDto>> ListTenantsAsync(string? accountUid, TenantState? state, PageRequest page, CancellationToken ct)
    {
        var q = db.Tenants.AsNoTracking();
        if (accountUid is not null)
        {
            q = q.Where(t => t.AccountUid == accountUid);
        }

        if (state is not null)
        {
            q = q.Where(t => t.State == state);
        }

        return q.OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).ToPageAsync(page, ToDto, ct);
    }

    /// <summary>
    /// Installs the tenant's default roles, config and models from the defaults file, in one transaction.
    /// Running it again adds what is missing and keeps what exists.
    /// </summary>
    public async Task<TenantInitResult> InitAsync(string id, CancellationToken ct)
    {
        var tenant = await FindTenantAsync(id, true, ct);
        var defaults = await TenantDefaults.LoadAsync(ResolveDefaultsPath(), ct);
        var problems = defaults.Check();
        if (problems.Count > 0)
        {
            throw new AtelierException(ErrorCatalog.b_user_inittenanterror, errCode: ErrCodes.DefaultsInvalid, errMessage: string.Join("; ", problems));
        }

        db.TenantScope = tenant.Id;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var existingRoles = await db.Roles.Select(r => r.Name).ToListAsync(ct);
        var roles = new List<string>();
        foreach (var r in defaults.Roles ?? [])
        {
            var name = r.Name!.Trim();
            roles.Add(name);
            if (!existingRoles.Contains(name))
            {
                db.Roles.Add(new Role { Id = Ids.New("rol", clock), TenantId = tenant.Id, Name = name, Description = r.Description, CreatedAt = Now });
            }
        }

        if (!await db.Agents.AnyAsync(a => a.Name == "default", ct))
        {
            db.Agents.Add(new Agent { Id = Ids.New("agt", clock), TenantId = tenant.Id, Name = "default", CreatedAt = Now });
        }

        if (!await db.TenantConfigs.AnyAsync(ct))
        {
            var c = defaults.Config;
            db.TenantConfigs.Add(new TenantConfig
            {
                TenantId = tenant.Id,
                DisplayName = tenant.Name,
                DefaultRole = c?.DefaultRole ?? roles.FirstOrDefault(),
                MaxConcurrentJobs = c?.MaxConcurrentJobs ?? 100,
                ImageRetentionDays = c?.ImageRetentionDays ?? 30,
                DefaultSessionSeconds = c?.DefaultSessionSeconds ?? 3600,
                UpdatedAt = Now,
                FunctionSettingsUpdatedAt = Now,
            });
        }

        var existingModels = await db.Models.Select(m => m.Name).ToListAsync(ct);
        var queuedDownloads = false;
        var models = new List<string>();
        foreach (var m in defaults.Models ?? [])
        {
            models.Add(m.Name!);
            if (!existingModels.Contains(m.Name!))
            {
                var model = new Model
                {
                    Id = Ids.New("mdl", clock), TenantId = tenant.Id, Name = m.Name!, Type = m.Type!,
                    Description = m.Description, SourceUrl = m.SourceUrl, CreatedAt = Now, UpdatedAt = Now,
                };
                db.Models.Add(model);
                if (m.Builtin && builtins.Find(m.Name!) is { } shipped)
                {
                    var version = new ModelVersion { Id = Ids.New("mv", clock), TenantId = tenant.Id, ModelId = model.Id, Name = "default", CreatedAt = Now };
                    db.ModelVersions.Add(version);
                    db.ModelFiles.Add(new ModelFile
                    {
                        Id = Ids.New("mf", clock), TenantId = tenant.Id, ModelId = model.Id, VersionId = version.Id,
                        AliasName = shipped.FileName, IsPrimary = true, Source = "hash", State = "stored", Sha256 = shipped.Sha256,
                        Size = shipped.Size, Format = shipped.Format, CreatedAt = Now, UpdatedAt = Now, FinishedAt = Now,
                    });
                }
                else if (m.SourceUrl is not null)
                {
                    // The file comes the way any URL file does: a "default" version whose primary file the download worker fetches.
                    var version = new ModelVersion { Id = Ids.New("mv", clock), TenantId = tenant.Id, ModelId = model.Id, Name = "default", CreatedAt = Now };
                    db.ModelVersions.Add(version);
                    db.ModelFiles.Add(new ModelFile
                    {
                        Id = Ids.New("mf", clock), TenantId = tenant.Id, ModelId = model.Id, VersionId = version.Id,
                        AliasName = TenantDefaults.FileNameOf(m), IsPrimary = true, Source = "url",
                        State = "queued", SourceUrl = m.SourceUrl, CreatedAt = Now, UpdatedAt = Now,
                    });
                    queuedDownloads = true;
                }
            }
        }

        if (tenant.State == TenantState.Created)
        {
            tenant.State = TenantState.Initialized;
        }

        tenant.InitializedAt ??= Now;
        Audit.Record(db, ctx, clock, "tenant.init", "tenant", tenant.Id, tenant.Id);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        if (queuedDownloads)
        {
            downloads.Wake();
        }
        return new TenantInitResult(ToDto(tenant), roles, models);
    }

    /// <summary>Opens the tenant for its tokens. A tenant that was never initialised has no config, so it cannot be activated.</summary>
    public async Task<TenantDto> ActivateAsync(string id, CancellationToken ct)
    {
        var tenant = await FindTenantAsync(id, true, ct);
        db.TenantScope = tenant.Id;
        if (!await db.TenantConfigs.AnyAsync(ct))
        {
            throw new AtelierException(ErrorCatalog.b_user_tenantconfignotfound, errCode: ErrCodes.TenantNotInitialized,
                errMessage: "initialise the tenant before activating it");
        }

        tenant.State = TenantState.Active;
        tenant.ActivatedAt ??= Now;
        Audit.Record(db, ctx, clock, "tenant.activate", "tenant", tenant.Id, tenant.Id);
        await db.SaveChangesAsync(ct);
        cache.EvictTenant(tenant.Id);
        return ToDto(tenant);
    }

    public async Task<TenantDto> DeactivateAsync(string id, CancellationToken ct)
    {
        var tenant = await FindTenantAsync(id, true, ct);
        tenant.State = TenantState.Inactive;
        Audit.Record(db, ctx, clock, "tenant.deactivate", "tenant", tenant.Id, tenant.Id);
        await db.SaveChangesAsync(ct);
        cache.EvictTenant(tenant.Id);
        return ToDto(tenant);
    }

    public async Task<TenantConfigDto> GetConfigAsync(CancellationToken ct) => ToDto(await FindConfigAsync(ct));

    public async Task<TenantConfigDto> PutConfigAsync(PutTenantConfigRequest req, CancellationToken ct)
    {
        var config = await FindConfigAsync(ct);
        var displayName = Validate.Optional(req.DisplayName, "displayName", Validate.NameMax);
        var defaultRole = req.DefaultRole is null ? null : Validate.Name(req.DefaultRole, "defaultRole");
        if (defaultRole is not null && !await db.Roles.AnyAsync(r => r.Name == defaultRole, ct))
        {
            throw AtelierException.With(ErrorCatalog.b_user_rolenotfound, "Role", defaultRole);
        }

        config.DisplayName = displayName;
        config.DefaultRole = defaultRole;
        var maxJobs = Validate.Range(req.MaxConcurrentJobs, "maxConcurrentJobs", 1, 10_000, config.MaxConcurrentJobs);
        if (maxJobs != config.MaxConcurrentJobs && ctx.Caller?.IsPlatformAdmin != true)
        {
            // A limit on the tenant, like its entitlements: the platform's to set, not the tenant's own admins'.
            throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.PlatformOnly,
                errMessage: "maxConcurrentJobs is set by the platform admin; leave it out (or unchanged)");
        }

        config.MaxConcurrentJobs = maxJobs;
        config.ImageRetentionDays = Validate.Range(req.ImageRetentionDays, "imageRetentionDays", 1, 3650, 30);
        config.DefaultSessionSeconds = Validate.Range(req.DefaultSessionSeconds, "defaultSessionSeconds", 60, 30 * 86400, 3600);
        config.Language = req.Language is null ? null
            : Languages.Known.Contains(req.Language) ? req.Language
            : throw AtelierException.InvalidInput("language", $"must be one of {string.Join(", ", Languages.Known)} (or absent: the server's default)");
        config.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "tenant.config.put", "tenant_config", config.TenantId, config.TenantId);
        // PostgreSQL: a lowered cap takes back the places set aside, waiting for their rows while it holds the counter row
        // (ActiveJobs); a submit holding a place row and waiting for the counter row closes a cycle, which PostgreSQL may
        // end on this side: the same changes are then saved again.
        await DbErrors.AgainOnDeadlockAsync(db, () => db.SaveChangesAsync(ct));

        languages.Forget(config.TenantId);
        return ToDto(config);
    }

    public async Task<FunctionSettingsDto> GetFunctionSettingsAsync(CancellationToken ct)
    {
        var config = await FindConfigAsync(ct);
        using var doc = JsonDocument.Parse(config.FunctionSettingsJson);
        return new FunctionSettingsDto(doc.RootElement.Clone(), config.FunctionSettingsUpdatedAt);
    }

    /// <summary>
    /// Replaces the global function settings with the raw JSON document of the request. Text that is not JSON,
    /// or JSON that breaks the schema, is <c>b_user_globalfunctionschemaparseerror</c> with every violation listed.
    /// </summary>
    public async Task<FunctionSettingsDto> PutFunctionSettingsAsync(string rawJson, CancellationToken ct)
    {
        var config = await FindConfigAsync(ct);
        JsonElement doc;
        try
        {
            using var parsed = JsonDocument.Parse(rawJson, new JsonDocumentOptions { MaxDepth = 16 });
            doc = parsed.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new AtelierException(ErrorCatalog.b_user_globalfunctionschemaparseerror, errCode: ErrCodes.JsonParse, errMessage: e.Message);
        }

        var violations = FunctionSettingsSchema.Validate(doc);
        if (violations.Count > 0)
        {
            throw new AtelierException(ErrorCatalog.b_user_globalfunctionschemaparseerror, errCode: ErrCodes.SchemaViolation,
                errMessage: string.Join("; ", violations.Take(20)));
        }

        config.FunctionSettingsJson = doc.GetRawText();
        config.FunctionSettingsUpdatedAt = Now;
        Audit.Record(db, ctx, clock, "tenant.function_settings.put", "tenant_config", config.TenantId, config.TenantId);
        await db.SaveChangesAsync(ct);
        return new FunctionSettingsDto(doc, config.FunctionSettingsUpdatedAt);
    }

    internal async Task<Tenant> FindTenantAsync(string id, bool tracking, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            throw new AtelierException(ErrorCatalog.b_tenant_invalidtenantidnul);
        }

        var q = tracking ? db.Tenants : db.Tenants.AsNoTracking();
        return await q.FirstOrDefaultAsync(t => t.Id == id, ct)
               ?? throw new AtelierException(ErrorCatalog.b_user_tenantnotfound, errCode: ErrCodes.TenantNotFound, errMessage: id);
    }

    private async Task<TenantConfig> FindConfigAsync(CancellationToken ct) =>
        await db.TenantConfigs.FirstOrDefaultAsync(ct)
        ?? throw new AtelierException(ErrorCatalog.b_user_tenantconfignotfound, errCode: ErrCodes.TenantNotInitialized,
            errMessage: "the tenant has no config until it is initialised");

    private string ResolveDefaultsPath()
    {
        var path = options.Value.DefaultsFile;
        return Path.IsPathRooted(path) ? path : Path.Combine(AppContext.BaseDirectory, path);
    }

    private static AtelierException AccountNotFound(string uid) =>
        new(ErrorCatalog.b_user_aliyunuidnotfound, errCode: ErrCodes.AccountNotFound, errMessage: uid);

    private static JsonSchema LoadSchema()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Atelier.Core.Tenancy.function-settings.schema.json")!;
        using var reader = new StreamReader(stream);
        return JsonSchema.Load(reader.ReadToEnd());
    }

    internal static AccountDto ToDto(Account a) => new(a.Uid, a.Name, a.CreatedAt);

    internal static TenantDto ToDto(Tenant t) => new(t.Id, t.AccountUid, t.Name, t.State, t.CreatedAt, t.InitializedAt, t.ActivatedAt);

    private static TenantConfigDto ToDto(TenantConfig c) =>
        new(c.DisplayName, c.DefaultRole, c.MaxConcurrentJobs, c.ImageRetentionDays, c.DefaultSessionSeconds, c.UpdatedAt, c.Language);
}
