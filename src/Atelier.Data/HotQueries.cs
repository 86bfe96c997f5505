using Atelier.Contracts.Identity;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Data;

/// <summary>
/// Precompiled queries for the reads on every request's path. A compiled query skips EF's per-call expression
/// work, which measured 5-6 times the cost of the query itself on SQLite (see docs/benchmarks.md). Tenant
/// query filters still apply.
/// </summary>
public static class HotQueries
{
    public static readonly Func<AtelierDb, string, CancellationToken, Task<App?>> AppById =
        EF.CompileAsyncQuery((AtelierDb db, string id, CancellationToken ct) => db.Apps.AsNoTracking().FirstOrDefault(a => a.Id == id));

    public static readonly Func<AtelierDb, byte[], CancellationToken, Task<ApiToken?>> TokenByHash =
        EF.CompileAsyncQuery((AtelierDb db, byte[] hash, CancellationToken ct) =>
            db.ApiTokens.IgnoreQueryFilters().AsNoTracking().FirstOrDefault(t => t.SecretHash == hash));

    public static readonly Func<AtelierDb, byte[], CancellationToken, Task<PlatformKey?>> PlatformKeyByHash =
        EF.CompileAsyncQuery((AtelierDb db, byte[] hash, CancellationToken ct) =>
            db.PlatformKeys.AsNoTracking().FirstOrDefault(k => k.SecretHash == hash));

    public static readonly Func<AtelierDb, byte[], CancellationToken, Task<Session?>> SessionByCredential =
        EF.CompileAsyncQuery((AtelierDb db, byte[] hash, CancellationToken ct) =>
            db.Sessions.IgnoreQueryFilters().AsNoTracking().FirstOrDefault(s => s.CredentialHash == hash));

    public static readonly Func<AtelierDb, string, CancellationToken, Task<TenantState?>> TenantStateById =
        EF.CompileAsyncQuery((AtelierDb db, string id, CancellationToken ct) =>
            db.Tenants.Where(t => t.Id == id).Select(t => (TenantState?)t.State).FirstOrDefault());
}
