using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Identity;

/// <summary>Apps, roles, operators and the audit log of the tenant in scope.</summary>
public sealed class IdentityService(AtelierDb db, RequestContext ctx, TimeProvider clock, Webhooks.WebhookSigningKeys signingKeys)
{
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    // ---- apps

    public async Task<AppDto> CreateAppAsync(CreateAppRequest req, CancellationToken ct)
    {
        var app = new App
        {
            Id = Ids.New("app", clock), TenantId = TenantId, Name = Validate.Name(req.Name, "name"),
            Description = Validate.Optional(req.Description, "description"), CreatedAt = Now, UpdatedAt = Now,
        };
        db.Apps.Add(app);
        Audit.Record(db, ctx, clock, "app.create", "app", app.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return ToDto(app);
    }

    public async Task<AppDto> GetAppAsync(string id, CancellationToken ct) => ToDto(await FindAppAsync(id, false, ct));

    public Task<Page<AppDto>> ListAppsAsync(PageRequest page, CancellationToken ct) =>
        db.Apps.AsNoTracking().OrderBy(a => a.CreatedAt).ThenBy(a => a.Id).ToPageAsync(page, ToDto, ct);

    public async Task<AppDto> UpdateAppAsync(string id, UpdateAppRequest req, CancellationToken ct)
    {
        var app = await FindAppAsync(id, true, ct);
        app.Name = Validate.Name(req.Name ?? app.Name, "name");
        app.Description = req.Description is null ? app.Description : Validate.Optional(req.Description, "description");
        app.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "app.update", "app", app.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return ToDto(app);
    }

    public async Task DeleteAppAsync(string id, CancellationToken ct)
    {
        var app = await FindAppAsync(id, true, ct);
        // Its sessions end first, counted on their tokens while those still exist; a session's row keeps its seconds.
        await Sessions.SessionService.EndAllAsync(db, TenantId, null, app.Id, "app_deleted", clock, ct);
        await db.ApiTokens.Where(t => t.AppId == app.Id).ExecuteDeleteAsync(ct);
        // Its webhooks stop: the signing secret goes, and messages not yet delivered end (they stay in the log).
        await db.AppWebhooks.Where(w => w.AppId == app.Id).ExecuteDeleteAsync(ct);
        await Webhooks.WebhookEnd.FailAsync(db.WebhookDeliveries.Where(d => d.AppId == app.Id && d.State == Webhooks.WebhookRelay.Pending),
            Webhooks.WebhookEnd.AppDeleted, Now, ct);
        db.Apps.Remove(app);
        Audit.Record(db, ctx, clock, "app.delete", "app", app.Id, TenantId);
        await db.SaveChangesAsync(ct);
        signingKeys.Forget(TenantId, app.Id);
    }

    internal async Task<App> FindAppAsync(string id, bool tracking, CancellationToken ct)
    {
        var app = tracking ? await db.Apps.FirstOrDefaultAsync(a => a.Id == id, ct) : await HotQueries.AppById(db, id, ct);
        return app ?? throw AtelierException.With(ErrorCatalog.b_user_appnotfound, "App", id);
    }

    // ---- roles

    public async Task<RoleDto> CreateRoleAsync(CreateRoleRequest req, CancellationToken ct)
    {
        var name = Validate.Name(req.Name, "name");
        await EnsureRoleNameFreeAsync(name, null, ct);
        var role = new Role
        {
            Id = Ids.New("rol", clock), TenantId = TenantId, Name = name,
            Description = Validate.Optional(req.Description, "description"), CreatedAt = Now,
        };
        db.Roles.Add(role);
        Audit.Record(db, ctx, clock, "role.create", "role", role.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.b_user_rolenameduplicated, "Role", name), ct);
        return ToDto(role);
    }

    public async Task<RoleDto> GetRoleAsync(string id, CancellationToken ct) => ToDto(await FindRoleAsync(id, false, ct));

    public Task<Page<RoleDto>> ListRolesAsync(PageRequest page, CancellationToken ct) =>
        db.Roles.AsNoTracking().OrderBy(r => r.CreatedAt).ThenBy(r => r.Id).ToPageAsync(page, ToDto, ct);

    public async Task<RoleDto> UpdateRoleAsync(string id, UpdateRoleRequest req, CancellationToken ct)
    {
        var role = await FindRoleAsync(id, true, ct);
        var name = Validate.Name(req.Name ?? role.Name, "name");
        await EnsureRoleNameFreeAsync(name, role.Id, ct);
        role.Name = name;
        role.Description = req.Description is null ? role.Description : Validate.Optional(req.Description, "description");
        Audit.Record(db, ctx, clock, "role.update", "role", role.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.With(ErrorCatalog.b_user_rolenameduplicated, "Role", name), ct);
        return ToDto(role);
    }

    public async Task DeleteRoleAsync(string id, CancellationToken ct)
    {
        var role = await FindRoleAsync(id, true, ct);
        db.Roles.Remove(role);
        Audit.Record(db, ctx, clock, "role.delete", "role", role.Id, TenantId);
        await db.SaveChangesAsync(ct);
    }

    /// <summary>Finds a role of the tenant by id or by name.</summary>
    public async Task<Role> FindRoleAsync(string idOrName, bool tracking, CancellationToken ct)
    {
        var q = tracking ? db.Roles : db.Roles.AsNoTracking();
        return await q.FirstOrDefaultAsync(r => r.Id == idOrName || r.Name == idOrName, ct)
               ?? throw AtelierException.With(ErrorCatalog.b_user_rolenotfound, "Role", idOrName);
    }

    private async Task EnsureRoleNameFreeAsync(string name, string? exceptId, CancellationToken ct)
    {
        if (await db.Roles.AnyAsync(r => r.Name == name && r.Id != exceptId, ct))
        {
            throw AtelierException.With(ErrorCatalog.b_user_rolenameduplicated, "Role", name);
        }
    }


    // ---- operators and audit

    public async Task<OperatorDto> CreateOperatorAsync(CreateOperatorRequest req, CancellationToken ct)
    {
        var id = Validate.Identifier(req.Id, "id");
        if (await db.Operators.AnyAsync(o => o.Id == id, ct))
        {
            throw new AtelierException(ErrorCatalog.p_common_inputinvalid,
                new Dictionary<string, string> { ["Input"] = $"id: operator {id} already exists" }, status: 409);
        }

        var op = new Operator
        {
            Id = id, TenantId = TenantId, Name = Validate.Name(req.Name, "name"),
            Email = Validate.Optional(req.Email, "email", 254), CreatedAt = Now,
        };
        db.Operators.Add(op);
        Audit.Record(db, ctx, clock, "operator.create", "operator", op.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return ToDto(op);
    }

    public Task<Page<OperatorDto>> ListOperatorsAsync(PageRequest page, CancellationToken ct) =>
        db.Operators.AsNoTracking().OrderBy(o => o.CreatedAt).ThenBy(o => o.Id).ToPageAsync(page, ToDto, ct);

    /// <summary>The audit log of the tenant in scope, or the platform-level entries when <paramref name="platform"/> is set.</summary>
    public Task<Page<AuditEntryDto>> ListAuditAsync(bool platform, string? operatorId, PageRequest page, CancellationToken ct)
    {
        var tenantId = platform ? null : TenantId;
        var q = db.AuditLog.AsNoTracking().Where(a => a.TenantId == tenantId);
        if (operatorId is not null)
        {
            q = q.Where(a => a.OperatorId == operatorId);
        }

        return q.OrderByDescending(a => a.At).ThenByDescending(a => a.Id).ToPageAsync(page, ToDto, ct);
    }

    internal static AppDto ToDto(App a) => new(a.Id, a.Name, a.Description, a.CreatedAt, a.UpdatedAt);
    internal static RoleDto ToDto(Role r) => new(r.Id, r.Name, r.Description, r.CreatedAt);
    private static OperatorDto ToDto(Operator o) => new(o.Id, o.Name, o.Email, o.CreatedAt);
    private static AuditEntryDto ToDto(AuditEntry a) =>
        new(a.Id, a.TenantId, a.OperatorId, a.Action, a.ResourceType, a.ResourceId, a.CredentialId, a.RequestId, a.At, a.ClientRequestId);
}
