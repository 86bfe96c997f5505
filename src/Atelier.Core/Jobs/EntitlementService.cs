using Atelier.Contracts.Entitlements;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>
/// Entitlements: per tenant (scope <c>tenant</c>) and per app (scope = the app id) limits on jobs, and the pre-check a
/// submit passes before anything is queued. Where the tenant has entitlements, the check and the queueing are one
/// transaction that first locks the tenant's config and entitlement rows (PostgreSQL <c>FOR UPDATE</c>; SQLite's
/// immediate transaction holds the only write lock), so racing submits count each other: 100 parallel submits against
/// 10 credits queue exactly 10 jobs. The tenant config's <c>maxConcurrentJobs</c> needs no lock: the database keeps the
/// tenant's count of active jobs and the job's insert refuses one above the cap (<see cref="ActiveJobs"/>).
/// Who sets what: the tenant's own limits and credits only the platform admin; a tenant admin divides them among its
/// apps, never above them (each app limit at most the tenant's; the apps' credits together at most the tenant's).
/// </summary>
public sealed class EntitlementService(AtelierDb db, IDatabaseProvider provider, RequestContext ctx, TimeProvider clock, ShortCache<IReadOnlyList<Entitlement>> cache)
{
    public const string TenantScope = "*";
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<IReadOnlyList<EntitlementDto>> ListAsync(CancellationToken ct) =>
        [.. (await db.Entitlements.AsNoTracking().OrderBy(e => e.Scope).ToListAsync(ct)).Select(ToDto)];

    public async Task<EntitlementDto> PutAsync(string scope, EntitlementRequest req, CancellationToken ct)
    {
        var key = await ScopeKeyAsync(scope, ct);
        var maxConcurrent = req.MaxConcurrentJobs is null ? null : (int?)Validate.Range(req.MaxConcurrentJobs, "maxConcurrentJobs", 0, 100_000, 0);
        var maxPerPeriod = req.MaxJobsPerPeriod is null ? null : (int?)Validate.Range(req.MaxJobsPerPeriod, "maxJobsPerPeriod", 0, 100_000_000, 0);
        var period = Validate.Range(req.PeriodSeconds, "periodSeconds", 60, 366 * 86400, 86400);
        var credits = req.Credits is null ? null : req.Credits is >= 0 and <= 1_000_000_000_000 ? req.Credits
            : throw AtelierException.InvalidInput("credits", "must be 0 to 10^12, or null for no limit");
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await LockAsync(ct);
        var row = await db.Entitlements.FirstOrDefaultAsync(e => e.Scope == key, ct);
        if (!Caller.IsPlatformAdmin)
        {
            await CheckWithinTenantAsync(key, row, new Entitlement { Id = "", TenantId = TenantId, Scope = key, MaxConcurrentJobs = maxConcurrent, MaxJobsPerPeriod = maxPerPeriod, Credits = credits }, ct);
        }

        if (row is null)
        {
            row = new Entitlement { Id = Ids.New("ent", clock), TenantId = TenantId, Scope = key };
            db.Entitlements.Add(row);
        }

        row.MaxConcurrentJobs = maxConcurrent;
        row.MaxJobsPerPeriod = maxPerPeriod;
        row.PeriodSeconds = period;
        row.Credits = credits;
        row.UpdatedAt = clock.GetUtcNow().UtcDateTime;
        Audit.Record(db, ctx, clock, "entitlement.put", "entitlement", row.Id, TenantId);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("scope", "was set at the same moment; try again"), ct);
        await tx.CommitAsync(ct);
        cache.Remove(TenantId);
        return ToDto(row);
    }

    /// <summary>Adds (or with a negative number takes) credits atomically; a scope without a balance gets one. Audited.</summary>
    public async Task<EntitlementDto> AddCreditsAsync(string scope, CreditsRequest req, CancellationToken ct)
    {
        var key = await ScopeKeyAsync(scope, ct);
        var add = req.Add is { } n and >= -1_000_000_000_000 and <= 1_000_000_000_000 && n != 0 ? n : throw AtelierException.InvalidInput("add", "must be a non-zero whole number");
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await LockAsync(ct);
        var row = await db.Entitlements.AsNoTracking().FirstOrDefaultAsync(e => e.Scope == key, ct)
                  ?? throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"scope: {scope} has no entitlement" }, status: 404);
        if (!Caller.IsPlatformAdmin && add > 0)
        {
            await CheckWithinTenantAsync(key, row, new Entitlement
            {
                Id = row.Id, TenantId = TenantId, Scope = key, MaxConcurrentJobs = row.MaxConcurrentJobs, MaxJobsPerPeriod = row.MaxJobsPerPeriod, Credits = (row.Credits ?? 0) + add,
            }, ct);
        }
        else if (!Caller.IsPlatformAdmin && key == TenantScope)
        {
            throw PlatformOnly();
        }

        var changed = await db.Entitlements.Where(e => e.Id == row.Id && (e.Credits ?? 0) + add >= 0)
            .ExecuteUpdateAsync(u => u.SetProperty(e => e.Credits, e => (e.Credits ?? 0) + add).SetProperty(e => e.UpdatedAt, clock.GetUtcNow().UtcDateTime), ct);
        if (changed == 0)
        {
            throw AtelierException.InvalidInput("add", "would take the balance below zero");
        }

        Audit.Record(db, ctx, clock, "entitlement.credits.add", "entitlement", row.Id, TenantId);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        cache.Remove(TenantId);

        return ToDto(await db.Entitlements.AsNoTracking().FirstAsync(e => e.Id == row.Id, ct));
    }

    /// <summary>
    /// What a tenant admin may set: never the tenant's own limits; an app's limits at most the tenant's (its
    /// <c>maxConcurrentJobs</c> also at most the tenant config's), and its credits so that the apps' credits together
    /// stay within the tenant's balance. Lowering is always allowed.
    /// </summary>
    private async Task CheckWithinTenantAsync(string key, Entitlement? before, Entitlement after, CancellationToken ct)
    {
        if (key == TenantScope)
        {
            throw PlatformOnly();
        }

        var tenant = await db.Entitlements.AsNoTracking().FirstOrDefaultAsync(e => e.Scope == TenantScope, ct);
        var configCap = await db.TenantConfigs.AsNoTracking().Select(c => (int?)c.MaxConcurrentJobs).FirstOrDefaultAsync(ct);
        var tenantJobs = Math.Min(tenant?.MaxConcurrentJobs ?? int.MaxValue, configCap ?? int.MaxValue);
        if (after.MaxConcurrentJobs is { } jobs && jobs > tenantJobs && jobs > (before?.MaxConcurrentJobs ?? -1))
        {
            throw AboveTenant("maxConcurrentJobs", $"{jobs} is more than the tenant's {tenantJobs}");
        }

        if (after.MaxJobsPerPeriod is { } perPeriod && tenant?.MaxJobsPerPeriod is { } tenantPerPeriod
            && perPeriod > tenantPerPeriod && perPeriod > (before?.MaxJobsPerPeriod ?? -1))
        {
            throw AboveTenant("maxJobsPerPeriod", $"{perPeriod} is more than the tenant's {tenantPerPeriod}");
        }

        if (after.Credits is { } credits && tenant?.Credits is { } tenantCredits && credits > (before?.Credits ?? 0))
        {
            var others = await db.Entitlements.AsNoTracking().Where(e => e.Scope != TenantScope && e.Scope != key && e.Credits != null).SumAsync(e => e.Credits ?? 0, ct);
            if (others + credits > tenantCredits)
            {
                throw AboveTenant("credits", $"the apps' credits would come to {others + credits}, more than the tenant's {tenantCredits} ({Math.Max(0, tenantCredits - others)} left to divide)");
            }
        }
    }

    /// <summary>The tenant's config and entitlement rows, locked in that order by every writer (submits too), so none deadlock.</summary>
    private async Task LockAsync(CancellationToken ct)
    {
        await LockTenantConfigAsync(ct);
        var tenantId = TenantId;
        await provider.LockRowsAsync(db, $"""SELECT 1 FROM entitlements WHERE "TenantId" = {tenantId} ORDER BY "Id" """, ct);
    }

    /// <summary>The tenant's config row: every writer of the tenant's limits, and every submit, locks it first.</summary>
    private async Task LockTenantConfigAsync(CancellationToken ct)
    {
        var tenantId = TenantId;
        await provider.LockRowsAsync(db, $"""SELECT 1 FROM tenant_configs WHERE "TenantId" = {tenantId}""", ct);
    }

    private Caller Caller => ctx.Caller ?? throw new InvalidOperationException("No caller.");

    private static AtelierException PlatformOnly() =>
        new(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.PlatformOnly,
            errMessage: "the tenant's own credits and limits are set by the platform admin; a tenant admin divides them among its apps");

    private static AtelierException AboveTenant(string field, string what) =>
        new(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.TenantAllowance, errMessage: $"{field}: {what}; a tenant admin may divide the tenant's allowance, not raise it");

    /// <summary>
    /// The limits that apply to a submit from <paramref name="appId"/>: the tenant's and the app's (which limits exist
    /// comes from the replica's short cache; the counts and the balance are read and taken in the transaction).
    /// </summary>
    public async Task<List<Entitlement>> ApplicableAsync(string? appId, CancellationToken ct) =>
        [.. (await cache.GetOrAddAsync(TenantId, async () => await db.Entitlements.AsNoTracking().ToListAsync(ct)))
            .Where(e => e.Scope == TenantScope || e.Scope == appId)];

    /// <summary>How many rows <paramref name="q"/> has, counted no further than <paramref name="cap"/>: a check against a
    /// cap reads at most cap index entries, however many jobs are queued (a bench tenant with thousands queued paid for each).</summary>
    private static Task<int> CountUpToAsync(IQueryable<Job> q, int cap, CancellationToken ct) => q.Take(Math.Max(0, cap)).CountAsync(ct);

    /// <summary>
    /// Checks every entitlement limit for a job of <paramref name="images"/> images and takes its credits; call inside the
    /// transaction that queues the job (whose insert checks the tenant config's <c>maxConcurrentJobs</c>, see <see cref="ActiveJobs"/>). A refusal names the limit: <c>b_agent_jobpreinvokefail</c>, errCode
    /// <c>concurrent_jobs</c>, <c>jobs_per_period</c> or <c>credits</c>, and nothing is queued. Returns the credits
    /// taken and from which entitlements (stored on the job, so a job that does not succeed gives them back).
    /// </summary>
    public async Task<(int Credits, string? From)> CheckAndChargeAsync(IReadOnlyList<Entitlement> limits, string? appId, int images, CancellationToken ct)
    {
        var charged = new List<string>();
        await LockTenantConfigAsync(ct);
        foreach (var id in limits.Select(l => l.Id).Order(StringComparer.Ordinal))
        {
            await provider.LockRowsAsync(db, $"""SELECT 1 FROM entitlements WHERE "Id" = {id}""", ct);
        }

        var now = clock.GetUtcNow().UtcDateTime;
        foreach (var limit in limits)
        {
            var scopeName = limit.Scope == TenantScope ? "the tenant" : $"app {limit.Scope}";
            var jobs = db.Jobs.AsNoTracking();
            jobs = limit.Scope == TenantScope ? jobs : jobs.Where(j => j.AppId == limit.Scope);
            if (limit.MaxConcurrentJobs is { } maxConcurrent
                && await CountUpToAsync(jobs.Where(j => j.State == JobStates.Queued || j.State == JobStates.Running), maxConcurrent, ct) >= maxConcurrent)
            {
                throw Refused(ErrCodes.ConcurrentJobs, $"{scopeName} has {maxConcurrent} jobs queued or running, its limit");
            }

            var since = now.AddSeconds(-limit.PeriodSeconds);
            if (limit.MaxJobsPerPeriod is { } maxPerPeriod && await jobs.CountAsync(j => j.CreatedAt > since, ct) >= maxPerPeriod)
            {
                throw Refused(ErrCodes.JobsPerPeriod, $"{scopeName} submitted {maxPerPeriod} jobs in the last {limit.PeriodSeconds} s, its limit");
            }

            if (limit.Credits is not null
                && await db.Entitlements.Where(e => e.Id == limit.Id && e.Credits >= images)
                    .ExecuteUpdateAsync(u => u.SetProperty(e => e.Credits, e => e.Credits - images), ct) == 0)
            {
                throw Refused(ErrCodes.Credits, $"{scopeName} has fewer than the {images} image credits this job needs");
            }

            if (limit.Credits is not null)
            {
                charged.Add(limit.Id);
            }
        }

        return charged.Count == 0 ? (0, null) : (images, "," + string.Join(",", charged) + ",");
    }

    /// <summary>
    /// Gives a job's credits back to the entitlements they were taken from, once (the job's count goes to zero); call
    /// inside the transaction that ends the job without success.
    /// </summary>
    public static async Task RefundAsync(AtelierDb db, string jobId, CancellationToken ct)
    {
        // The lock order of every writer of the tenant's credits (the config row, then the entitlements; see LockAsync):
        // the refund takes the config row first. The job's end does not take it on PostgreSQL (its count goes to the
        // tenant's ends, ActiveJobs.PostgresEndsUp), and the entitlements' update below locks them in no set order, so a
        // refund racing a charge of the same two entitlements could otherwise deadlock.
        await db.Database.ExecuteSqlRawAsync(
            """
            UPDATE tenant_configs SET "UpdatedAt" = "UpdatedAt"
            WHERE "TenantId" = (SELECT "TenantId" FROM jobs WHERE "Id" = {0} AND "CreditsCharged" > 0)
            """, [jobId], ct);
        await db.Database.ExecuteSqlRawAsync(
            """
            UPDATE entitlements SET "Credits" = "Credits" + (SELECT "CreditsCharged" FROM jobs WHERE "Id" = {0})
            WHERE "Credits" IS NOT NULL
              AND (SELECT "CreditScopes" FROM jobs WHERE "Id" = {0} AND "CreditsCharged" > 0) LIKE '%,' || "Id" || ',%'
            """, [jobId], ct);
        await db.Database.ExecuteSqlRawAsync("""UPDATE jobs SET "CreditsCharged" = 0 WHERE "Id" = {0} AND "CreditsCharged" > 0""", [jobId], ct);
    }

    /// <summary>A submit refused by a limit (an entitlement's, or the tenant config's cap refused by the job's insert).</summary>
    internal static AtelierException Refused(string limit, string message) => new(ErrorCatalog.b_agent_jobpreinvokefail, errCode: limit, errMessage: message);

    private async Task<string> ScopeKeyAsync(string scope, CancellationToken ct)
    {
        if (scope == "tenant")
        {
            return TenantScope;
        }

        return await db.Apps.AnyAsync(a => a.Id == scope, ct)
            ? scope
            : throw new AtelierException(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"scope: {scope} is neither 'tenant' nor an app of the tenant" }, status: 404);
    }

    private static EntitlementDto ToDto(Entitlement e) =>
        new(e.Scope == TenantScope ? "tenant" : e.Scope, e.MaxConcurrentJobs, e.MaxJobsPerPeriod, e.PeriodSeconds, e.Credits, e.UpdatedAt);
}
