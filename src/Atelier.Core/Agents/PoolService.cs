using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Agents;

/// <summary>Computing pools and their region configs: the platform admin's capacity, which tenants place units in.</summary>
public sealed class PoolService(AtelierDb db, RequestContext ctx, TimeProvider clock)
{
    private const int MaxInstanceTypes = 32;
    private const int MaxSubprojects = 64;
    private const int MaxRegions = 32;

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    public async Task<ComputingPoolDto> CreateAsync(ComputingPoolRequest req, CancellationToken ct)
    {
        var pool = new ComputingPool { Id = Ids.New("pool", clock), Name = Validate.Name(req.Name, "name"), CreatedAt = Now, UpdatedAt = Now };
        pool.Description = Validate.Optional(req.Description, "description");
        pool.TenantIds = await TenantIdsAsync(req.TenantIds, ct);
        var regions = await RegionsAsync(pool.Id, req.Regions, ct);
        db.ComputingPools.Add(pool);
        db.PoolRegions.AddRange(regions);
        Audit.Record(db, ctx, clock, "computing_pool.create", "computing_pool", pool.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"computing pool {pool.Name} already exists", 409), ct);
        return await GetAsync(pool.Id, ct);
    }

    /// <summary>Replaces the pool's name, description, tenants and (when given) every region config.</summary>
    public async Task<ComputingPoolDto> UpdateAsync(string id, ComputingPoolRequest req, CancellationToken ct)
    {
        var pool = await FindAsync(id, ct);
        pool.Name = req.Name is null ? pool.Name : Validate.Name(req.Name, "name");
        pool.Description = req.Description is null ? pool.Description : Validate.Optional(req.Description, "description");
        pool.TenantIds = req.TenantIds is null ? pool.TenantIds : await TenantIdsAsync(req.TenantIds, ct);
        if (req.Regions is not null)
        {
            var regions = await RegionsAsync(pool.Id, req.Regions, ct);
            var old = await db.PoolRegions.Where(r => r.PoolId == id).ToListAsync(ct);
            var dropped = old.Select(r => r.Region).Except(regions.Select(r => r.Region)).ToList();
            if (dropped.Count > 0 && await db.ComputingUnits.IgnoreQueryFilters().AnyAsync(u => u.PoolId == id && dropped.Contains(u.Region), ct))
            {
                throw AtelierException.InvalidInput("regions", $"region {string.Join(", ", dropped)} still has computing units", 409);
            }

            db.PoolRegions.RemoveRange(old);
            await db.SaveChangesAsync(ct);
            db.PoolRegions.AddRange(regions);
        }

        pool.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "computing_pool.update", "computing_pool", pool.Id, null);
        await db.SaveOrDuplicateAsync(() => AtelierException.InvalidInput("name", $"computing pool {pool.Name} already exists", 409), ct);
        return await GetAsync(pool.Id, ct);
    }

    public async Task<ComputingPoolDto> GetAsync(string id, CancellationToken ct)
    {
        var pool = await FindAsync(id, ct, tracking: false);
        return (await ToDtosAsync([pool], ct))[0];
    }

    public async Task<Page<ComputingPoolDto>> ListAsync(PageRequest page, CancellationToken ct)
    {
        var ordered = db.ComputingPools.AsNoTracking().OrderBy(p => p.CreatedAt).ThenBy(p => p.Id);
        var total = await ordered.LongCountAsync(ct);
        var rows = await ordered.Skip(page.Skip).Take(page.PageSize).ToListAsync(ct);
        return new Page<ComputingPoolDto>(await ToDtosAsync(rows, ct), page.PageNumber, page.PageSize, total);
    }

    /// <summary>The pools a tenant may place units in (every pool without a tenant list, and those that name it).</summary>
    public async Task<Page<ComputingPoolDto>> ListForTenantAsync(string tenantId, PageRequest page, CancellationToken ct)
    {
        var all = await db.ComputingPools.AsNoTracking().OrderBy(p => p.CreatedAt).ThenBy(p => p.Id).ToListAsync(ct);
        var visible = all.Where(p => Allows(p, tenantId)).ToList();
        var rows = visible.Skip(page.Skip).Take(page.PageSize).ToList();
        return new Page<ComputingPoolDto>(await ToDtosAsync(rows, ct), page.PageNumber, page.PageSize, visible.Count);
    }

    public async Task DeleteAsync(string id, CancellationToken ct)
    {
        var pool = await FindAsync(id, ct);
        if (await db.ComputingUnits.IgnoreQueryFilters().AnyAsync(u => u.PoolId == id, ct))
        {
            throw AtelierException.InvalidInput("id", $"computing pool {id} still has computing units", 409);
        }

        db.ComputingPools.Remove(pool);
        Audit.Record(db, ctx, clock, "computing_pool.delete", "computing_pool", id, null);
        await db.SaveChangesAsync(ct);
    }

    public async Task<PoolRegionDto> GetRegionAsync(string id, string region, CancellationToken ct)
    {
        await FindAsync(id, ct, tracking: false);
        var r = await db.PoolRegions.AsNoTracking().FirstOrDefaultAsync(x => x.PoolId == id && x.Region == region, ct) ?? throw RegionConfigNotFound(id, region);
        return await RegionDtoAsync(r, ct);
    }

    /// <summary>Creates or replaces one region config of a pool.</summary>
    public async Task<PoolRegionDto> PutRegionAsync(string id, string region, PoolRegionSpec spec, CancellationToken ct)
    {
        var pool = await FindAsync(id, ct);
        var built = await RegionAsync(id, (spec ?? new PoolRegionSpec(null, null, null)) with { Region = region }, ct);
        var existing = await db.PoolRegions.FirstOrDefaultAsync(x => x.PoolId == id && x.Region == built.Region, ct);
        if (existing is null)
        {
            db.PoolRegions.Add(built);
        }
        else
        {
            existing.InstanceTypesJson = built.InstanceTypesJson;
            existing.SubprojectsJson = built.SubprojectsJson;
            existing.UpdatedAt = Now;
        }

        pool.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "computing_pool.region.put", "computing_pool", id, region);
        await db.SaveChangesAsync(ct);
        return await GetRegionAsync(id, built.Region, ct);
    }

    public async Task DeleteRegionAsync(string id, string region, CancellationToken ct)
    {
        var pool = await FindAsync(id, ct);
        var r = await db.PoolRegions.FirstOrDefaultAsync(x => x.PoolId == id && x.Region == region, ct) ?? throw RegionConfigNotFound(id, region);
        if (await db.ComputingUnits.IgnoreQueryFilters().AnyAsync(u => u.PoolId == id && u.Region == region, ct))
        {
            throw AtelierException.InvalidInput("region", $"region {region} of pool {id} still has computing units", 409);
        }

        if (await db.PoolRegions.CountAsync(x => x.PoolId == id, ct) == 1)
        {
            throw new AtelierException(ErrorCatalog.b_agent_regionsnotexist, errCode: ErrCodes.RegionMissing,
                errMessage: $"region {region} is the last region of pool {id}: a pool needs at least one");
        }

        db.PoolRegions.Remove(r);
        pool.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "computing_pool.region.delete", "computing_pool", id, region);
        await db.SaveChangesAsync(ct);
    }

    public static bool Allows(ComputingPool pool, string tenantId) =>
        pool.TenantIds.Length == 0 || pool.TenantIds.Split('\n').Contains(tenantId, StringComparer.Ordinal);

    public static AtelierException PoolNotFound(string id) =>
        new(ErrorCatalog.b_agent_computingpoolnotexist, errCode: ErrCodes.PoolNotFound, errMessage: $"computing pool {id} does not exist");

    public static AtelierException RegionConfigNotFound(string poolId, string region) =>
        new(ErrorCatalog.b_agent_regionconfignotexist, errCode: ErrCodes.RegionConfigNotFound, errMessage: $"computing pool {poolId} has no region {region}");

    private async Task<ComputingPool> FindAsync(string id, CancellationToken ct, bool tracking = true)
    {
        var q = tracking ? db.ComputingPools : db.ComputingPools.AsNoTracking();
        return await q.FirstOrDefaultAsync(p => p.Id == id, ct) ?? throw PoolNotFound(id);
    }

    private async Task<string> TenantIdsAsync(IReadOnlyList<string>? ids, CancellationToken ct)
    {
        if (ids is null || ids.Count == 0)
        {
            return "";
        }

        var distinct = ids.Select(i => Validate.Identifier(i, "tenantIds")).Distinct(StringComparer.Ordinal).ToList();
        var known = await db.Tenants.AsNoTracking().Where(t => distinct.Contains(t.Id)).Select(t => t.Id).ToListAsync(ct);
        if (distinct.Except(known).FirstOrDefault() is { } missing)
        {
            throw AtelierException.InvalidInput("tenantIds", $"tenant {missing} does not exist", 404);
        }

        return string.Join('\n', distinct);
    }

    private async Task<List<PoolRegion>> RegionsAsync(string poolId, IReadOnlyList<PoolRegionSpec>? specs, CancellationToken ct)
    {
        if (specs is null || specs.Count == 0)
        {
            throw new AtelierException(ErrorCatalog.b_agent_regionsnotexist, errCode: ErrCodes.RegionMissing, errMessage: "regions: a pool needs at least one region config");
        }

        if (specs.Count > MaxRegions)
        {
            throw AtelierException.InvalidInput("regions", $"at most {MaxRegions}");
        }

        var duplicated = specs.GroupBy(s => s?.Region, StringComparer.Ordinal).FirstOrDefault(g => g.Key is not null && g.Count() > 1);
        if (duplicated is not null)
        {
            throw new AtelierException(ErrorCatalog.b_agent_regionsduplicated, errCode: ErrCodes.RegionDuplicated,
                errMessage: $"regions: {duplicated.Key} is given {duplicated.Count()} times");
        }

        var list = new List<PoolRegion>();
        foreach (var spec in specs)
        {
            list.Add(await RegionAsync(poolId, spec, ct));
        }

        return list;
    }

    private async Task<PoolRegion> RegionAsync(string poolId, PoolRegionSpec? spec, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(spec?.Region))
        {
            throw new AtelierException(ErrorCatalog.b_agent_regionsnotexist, errCode: ErrCodes.RegionMissing, errMessage: "regions[].region: each region config names its region");
        }

        var region = spec.Region;
        if (!await db.Regions.AnyAsync(r => r.Name == region, ct))
        {
            throw new AtelierException(ErrorCatalog.b_agent_regionsnotexist, errCode: ErrCodes.RegionMissing,
                errMessage: $"regions[].region: {region} is not a region of the runtime (GET /api/v1/platform/regions)");
        }

        var types = spec.InstanceTypes ?? [];
        if (types.Count is 0 or > MaxInstanceTypes)
        {
            throw AtelierException.InvalidInput($"regions[{region}].instanceTypes", $"must list 1 to {MaxInstanceTypes} instance types");
        }

        var parsed = new List<PoolCapacity.InstanceType>();
        foreach (var t in types)
        {
            var name = Validate.Label(t?.Name, "instanceTypes[].name", 63);
            if (parsed.Any(p => p.Name == name))
            {
                throw AtelierException.InvalidInput("instanceTypes[].name", $"{name} is given twice", 409);
            }

            var selector = t!.NodeSelector ?? new Dictionary<string, string>();
            if (selector.Count > 20 || selector.Any(kv => kv.Key.Length is 0 or > 253 || kv.Value.Length > 63))
            {
                throw AtelierException.InvalidInput("instanceTypes[].nodeSelector", "at most 20 labels, keys up to 253 and values up to 63 characters");
            }

            parsed.Add(new PoolCapacity.InstanceType(name, Validate.Range(t.Capacity, "instanceTypes[].capacity", 0, 100_000, 0),
                Validate.Range(t.SlotsPerReplica, "instanceTypes[].slotsPerReplica", 1, 64, 1), Validate.Range(t.Gpus, "instanceTypes[].gpus", 0, 16, 0),
                new Dictionary<string, string>(selector, StringComparer.Ordinal)));
        }

        var subs = new List<PoolCapacity.Subproject>();
        foreach (var s in spec.Subprojects ?? [])
        {
            if (subs.Count >= MaxSubprojects)
            {
                throw AtelierException.InvalidInput("subprojects", $"at most {MaxSubprojects}");
            }

            var name = Validate.Label(s?.Name, "subprojects[].name", 63);
            var type = s!.InstanceType;
            if (parsed.All(p => p.Name != type))
            {
                throw AtelierException.InvalidInput("subprojects[].instanceType", $"{type} is not an instance type of region {region}", 404);
            }

            if (subs.Any(x => x.Name == name))
            {
                throw AtelierException.InvalidInput("subprojects[].name", $"{name} is given twice", 409);
            }

            var tenant = s.TenantId is null ? null : Validate.Identifier(s.TenantId, "subprojects[].tenantId");
            if (tenant is not null && !await db.Tenants.AnyAsync(x => x.Id == tenant, ct))
            {
                throw AtelierException.InvalidInput("subprojects[].tenantId", $"tenant {tenant} does not exist", 404);
            }

            subs.Add(new PoolCapacity.Subproject(name, type!, Validate.Range(s.Capacity, "subprojects[].capacity", 0, 100_000, 0), tenant));
        }

        foreach (var over in parsed.Where(t => subs.Where(s => s.InstanceType == t.Name).Sum(s => s.Capacity) > t.Capacity))
        {
            throw AtelierException.InvalidInput("subprojects[].capacity", $"the sub-projects of {over.Name} share more than its capacity {over.Capacity}");
        }

        return new PoolRegion
        {
            PoolId = poolId, Region = region, CreatedAt = Now, UpdatedAt = Now,
            InstanceTypesJson = JsonSerializer.Serialize(parsed, AtelierJson.Options), SubprojectsJson = JsonSerializer.Serialize(subs, AtelierJson.Options),
        };
    }

    private async Task<PoolRegionDto> RegionDtoAsync(PoolRegion r, CancellationToken ct)
    {
        var backend = await db.Regions.AsNoTracking().Where(x => x.Name == r.Region).Select(x => x.Backend).FirstOrDefaultAsync(ct) ?? "";
        var units = await db.ComputingUnits.IgnoreQueryFilters().AsNoTracking().Where(u => u.PoolId == r.PoolId && u.Region == r.Region).ToListAsync(ct);
        return PoolCapacity.ToDto(r, backend, units);
    }

    private async Task<List<ComputingPoolDto>> ToDtosAsync(IReadOnlyList<ComputingPool> pools, CancellationToken ct)
    {
        var ids = pools.Select(p => p.Id).ToList();
        var regions = await db.PoolRegions.AsNoTracking().Where(r => ids.Contains(r.PoolId)).OrderBy(r => r.Region).ToListAsync(ct);
        var units = await db.ComputingUnits.IgnoreQueryFilters().AsNoTracking().Where(u => ids.Contains(u.PoolId)).ToListAsync(ct);
        var backends = await db.Regions.AsNoTracking().ToDictionaryAsync(r => r.Name, r => r.Backend, ct);
        return [.. pools.Select(p => new ComputingPoolDto(p.Id, p.Name, p.Description,
            [.. regions.Where(r => r.PoolId == p.Id).Select(r => PoolCapacity.ToDto(r, backends.GetValueOrDefault(r.Region, ""), units))],
            p.TenantIds.Length == 0 ? [] : p.TenantIds.Split('\n'), p.CreatedAt, p.UpdatedAt))];
    }
}
