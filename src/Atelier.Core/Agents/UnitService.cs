using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Core.Jobs;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Agents;

/// <summary>
/// A tenant's computing units (within the capacity its pools give it), their agent functions and worker keys, and what
/// the autoscaler decided for them; the platform admin's view of every agent function.
/// </summary>
public sealed class UnitService(AtelierDb db, RequestContext ctx, TimeProvider clock, JobService jobs, AgentService agents, AgentWorkloads workloads,
    RuntimeRegions regions, AutoscaleSignal autoscale, WorkerService workers, CapacityLocks locks)
{
    private const int DecisionsShown = 50;

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<ComputingUnitDto> CreateAsync(string agentRef, ComputingUnitRequest req, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        if (string.IsNullOrWhiteSpace(req.AgentVersionId))
        {
            throw AtelierException.InvalidInput("agentVersionId", "is required");
        }

        var version = await agents.FindVersionAsync(agent.Id, req.AgentVersionId, ct);
        var template = await agents.FindTemplateAsync(version.ScaleTemplateId, ct);
        var (pool, region) = await PlaceAsync(req.ComputingPoolId, req.Region, ct);
        var type = PoolCapacity.InstanceTypes(region).FirstOrDefault(t => t.Name == req.InstanceType)
                   ?? throw AtelierException.InvalidInput("instanceType", $"region {region.Region} of pool {pool.Id} has no instance type {req.InstanceType}", 404);
        var subproject = req.Subproject ?? "";
        if (subproject.Length > 0)
        {
            var sub = PoolCapacity.Subprojects(region).FirstOrDefault(s => s.Name == subproject && s.InstanceType == type.Name);
            if (sub is null || (sub.TenantId is not null && sub.TenantId != TenantId))
            {
                throw AtelierException.InvalidInput("subproject", $"instance type {type.Name} in region {region.Region} has no sub-project {subproject} for this tenant", 404);
            }
        }

        if (req.Replicas is < 0)
        {
            throw new AtelierException(ErrorCatalog.b_agent_replicasinvalid, errCode: ErrCodes.ReplicasInvalid, errMessage: $"replicas: {req.Replicas} is below 0");
        }

        var replicas = req.Replicas ?? template.MinReplicas;
        var unit = new ComputingUnit
        {
            Id = Ids.New("cu", clock), TenantId = TenantId, AgentId = agent.Id, AgentVersionId = version.Id, PoolId = pool.Id, Region = region.Region,
            InstanceType = type.Name, Subproject = subproject, Replicas = replicas, Autoscale = req.Autoscale ?? true, CreatedAt = Now, UpdatedAt = Now,
        };
        var (key, function) = NewFunction(unit);

        // Two units must not both take the last replicas of a share: the check and the insert hold the pool's lock.
        await using (await locks.AcquireAsync(pool.Id, ct))
        {
            await CheckCapacityAsync(unit, region, replicas, ct);
            db.ComputingUnits.Add(unit);
            db.AgentFunctions.Add(function);
            db.PlatformKeys.Add(key);
            Audit.Record(db, ctx, clock, "computing_unit.create", "computing_unit", unit.Id, null);
            await db.SaveChangesAsync(ct);
        }

        autoscale.Wake();
        return await GetAsync(agent.Id, unit.Id, ct);
    }

    public async Task<ComputingUnitDto> UpdateAsync(string agentRef, string unitId, UpdateComputingUnitRequest req, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct);
        var function = await FunctionOfAsync(unit, ct);
        if (req.AgentVersionId is { } versionId && versionId != unit.AgentVersionId)
        {
            var version = await agents.FindVersionAsync(unit.AgentId, versionId, ct);
            await agents.FindTemplateAsync(version.ScaleTemplateId, ct);
            unit.AgentVersionId = version.Id;
            function.State = "pending"; // the autoscaler applies the new version's spec (a rollout)
            function.UpdatedAt = Now;
        }

        unit.Autoscale = req.Autoscale ?? unit.Autoscale;
        if (req.Replicas is { } replicas)
        {
            if (replicas < 0)
            {
                throw new AtelierException(ErrorCatalog.b_agent_replicasinvalid, errCode: ErrCodes.ReplicasInvalid, errMessage: $"replicas: {replicas} is below 0");
            }

            var region = await db.PoolRegions.AsNoTracking().FirstOrDefaultAsync(r => r.PoolId == unit.PoolId && r.Region == unit.Region, ct)
                         ?? throw PoolService.RegionConfigNotFound(unit.PoolId, unit.Region);
            await using (await locks.AcquireAsync(unit.PoolId, ct))
            {
                await CheckCapacityAsync(unit, region, replicas, ct);
                unit.Replicas = replicas;
                unit.UpSince = null;
                unit.DownSince = null;
                unit.UpdatedAt = Now;
                Audit.Record(db, ctx, clock, "computing_unit.update", "computing_unit", unit.Id, null);
                await db.SaveChangesAsync(ct);
            }
        }
        else
        {
            unit.UpdatedAt = Now;
            Audit.Record(db, ctx, clock, "computing_unit.update", "computing_unit", unit.Id, null);
            await db.SaveChangesAsync(ct);
        }

        autoscale.Wake();
        return await GetAsync(unit.AgentId, unit.Id, ct);
    }

    public async Task<ComputingUnitDto> GetAsync(string agentRef, string unitId, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct, tracking: false);
        return (await ToDtosAsync([unit], ct))[0];
    }

    public async Task<Page<ComputingUnitDto>> ListAsync(string agentRef, PageRequest page, CancellationToken ct)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        var ordered = db.ComputingUnits.AsNoTracking().Where(u => u.AgentId == agent.Id).OrderBy(u => u.CreatedAt).ThenBy(u => u.Id);
        var total = await ordered.LongCountAsync(ct);
        var rows = await ordered.Skip(page.Skip).Take(page.PageSize).ToListAsync(ct);
        return new Page<ComputingUnitDto>(await ToDtosAsync(rows, ct), page.PageNumber, page.PageSize, total);
    }

    /// <summary>
    /// Removes the unit: its workload stops, its worker keys are revoked (their running jobs go back to the queue), and
    /// its rows go. The agent's queued jobs stay queued: its other units, or the shared workers when it has none left, take them.
    /// </summary>
    public async Task DeleteAsync(string agentRef, string unitId, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct);
        if (await db.AgentFunctions.FirstOrDefaultAsync(f => f.UnitId == unit.Id, ct) is { } function)
        {
            await RemoveWorkloadAsync(function, ct);
            db.AgentFunctions.Remove(function);
        }

        db.ComputingUnits.Remove(unit);
        await db.ScalingDecisions.Where(d => d.UnitId == unit.Id).ExecuteDeleteAsync(ct);
        Audit.Record(db, ctx, clock, "computing_unit.delete", "computing_unit", unit.Id, null);
        await db.SaveChangesAsync(ct);
        await RevokeUnitKeysAsync(unit.Id, ct);
        autoscale.Wake();
    }

    /// <summary>Gives a unit whose agent function was removed a new one (with a new worker key), or applies the existing one again.</summary>
    public async Task<ComputingUnitDto> RedeployAsync(string agentRef, string unitId, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct);
        var function = unit.FunctionId is null ? null : await db.AgentFunctions.FirstOrDefaultAsync(f => f.Id == unit.FunctionId, ct);
        if (function is null)
        {
            (var key, function) = NewFunction(unit);
            db.PlatformKeys.Add(key);
            db.AgentFunctions.Add(function);
        }

        function.State = "pending";
        function.UpdatedAt = Now;
        unit.ScaleFailures = 0;
        unit.RetryScaleAt = null;
        unit.ScaleError = null;
        unit.UpdatedAt = Now;
        Audit.Record(db, ctx, clock, "computing_unit.redeploy", "computing_unit", unit.Id, null);
        await db.SaveChangesAsync(ct);
        autoscale.Wake();
        return await GetAsync(unit.AgentId, unit.Id, ct);
    }

    /// <summary>The unit's scaling now and its latest decisions, newest first.</summary>
    public async Task<UnitScalingDto> ScalingAsync(string agentRef, string unitId, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct, tracking: false);
        var function = await FunctionOfAsync(unit, ct);
        var version = await db.AgentVersions.AsNoTracking().FirstAsync(v => v.Id == unit.AgentVersionId, ct);
        var template = await agents.FindTemplateAsync(version.ScaleTemplateId, ct);
        var region = await db.PoolRegions.AsNoTracking().FirstOrDefaultAsync(r => r.PoolId == unit.PoolId && r.Region == unit.Region, ct);
        var slots = region is null ? 0 : PoolCapacity.InstanceTypes(region).FirstOrDefault(t => t.Name == unit.InstanceType)?.SlotsPerReplica ?? 0;
        var counts = await db.Jobs.AsNoTracking().Where(j => j.AgentId == unit.AgentId && (j.State == JobStates.Queued || j.State == JobStates.Running))
            .GroupBy(j => j.State).Select(g => new { g.Key, Count = g.Count() }).ToListAsync(ct);
        var decisions = await db.ScalingDecisions.AsNoTracking().Where(d => d.UnitId == unit.Id).OrderByDescending(d => d.At).ThenByDescending(d => d.Id)
            .Take(DecisionsShown).ToListAsync(ct);
        return new UnitScalingDto(unit.Id, unit.Replicas, await ReadyAsync(function, ct), unit.Autoscale, AgentService.ToDto(template), slots,
            counts.Where(c => c.Key == JobStates.Queued).Sum(c => c.Count), counts.Where(c => c.Key == JobStates.Running).Sum(c => c.Count),
            unit.LastBusyAt, unit.UpSince, unit.DownSince, unit.ScaleError, unit.ScaleFailures, unit.RetryScaleAt, [.. decisions.Select(ToDto)]);
    }

    public async Task<IReadOnlyList<UnitWorkerKeyDto>> WorkerKeysAsync(string agentRef, string unitId, CancellationToken ct)
    {
        var unit = await FindAsync(agentRef, unitId, ct, tracking: false);
        return await db.PlatformKeys.AsNoTracking().Where(k => k.UnitId == unit.Id).OrderByDescending(k => k.CreatedAt)
            .Select(k => new UnitWorkerKeyDto(k.Id, k.DisplayPrefix, k.CreatedAt, k.LastUsedAt, k.RevokedAt)).ToListAsync(ct);
    }

    /// <summary>Every agent function of every tenant (the platform admin's view of what runs).</summary>
    public async Task<Page<AgentFunctionDto>> ListFunctionsAsync(PageRequest page, CancellationToken ct) =>
        await db.AgentFunctions.IgnoreQueryFilters().AsNoTracking().OrderBy(f => f.CreatedAt).ThenBy(f => f.Id)
            .ToPageAsync(page, f => ToDto(f, null), ct);

    /// <summary>
    /// Stops and removes an agent function (the platform admin's emergency stop): its unit stays, without workers, and
    /// answers <c>b_agent_agentfunctionnotexist</c> until its tenant redeploys it.
    /// </summary>
    public async Task DeleteFunctionAsync(string functionId, CancellationToken ct)
    {
        var function = await db.AgentFunctions.IgnoreQueryFilters().FirstOrDefaultAsync(f => f.Id == functionId, ct) ?? throw FunctionNotFound(functionId);
        db.TenantScope = function.TenantId; // the platform admin acts in the function's tenant
        await RemoveWorkloadAsync(function, ct);
        db.AgentFunctions.Remove(function);
        Audit.Record(db, ctx, clock, "agent_function.delete", "agent_function", function.Id, function.UnitId);
        await db.SaveChangesAsync(ct);
        await RevokeUnitKeysAsync(function.UnitId, ct);
        autoscale.Wake();
    }

    /// <summary>A new agent function for the unit (named after it, in its region) with a new worker key; the unit points at it.</summary>
    private (PlatformKey Key, AgentFunction Function) NewFunction(ComputingUnit unit)
    {
        var (key, cipher) = workloads.IssueKey(unit);
        var function = new AgentFunction
        {
            Id = Ids.New("agf", clock), TenantId = unit.TenantId, UnitId = unit.Id, Name = AgentWorkloads.WorkloadName(unit.Id), Region = unit.Region,
            KeyId = key.Id, KeyCipher = cipher, CreatedAt = Now, UpdatedAt = Now,
        };
        unit.FunctionId = function.Id;
        return (key, function);
    }

    public static AtelierException FunctionNotFound(string what) =>
        new(ErrorCatalog.b_agent_agentfunctionnotexist, errCode: ErrCodes.AgentFunctionNotFound, errMessage: $"{what}: the agent function was removed (POST …/units/{{id}}/redeploy)");

    private async Task<(ComputingPool Pool, PoolRegion Region)> PlaceAsync(string? poolId, string? regionName, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(poolId))
        {
            throw new AtelierException(ErrorCatalog.b_agent_computingpoolidisempty, errCode: ErrCodes.PoolIdEmpty, errMessage: "computingPoolId is required");
        }

        var pool = await db.ComputingPools.AsNoTracking().FirstOrDefaultAsync(p => p.Id == poolId, ct);
        if (pool is null || !PoolService.Allows(pool, TenantId))
        {
            throw PoolService.PoolNotFound(poolId);
        }

        var region = string.IsNullOrWhiteSpace(regionName) ? null
            : await db.PoolRegions.AsNoTracking().FirstOrDefaultAsync(r => r.PoolId == pool.Id && r.Region == regionName, ct);
        return (pool, region ?? throw PoolService.RegionConfigNotFound(pool.Id, regionName ?? "(none)"));
    }

    private async Task CheckCapacityAsync(ComputingUnit unit, PoolRegion region, int replicas, CancellationToken ct)
    {
        var share = PoolCapacity.ShareCapacity(region, unit.InstanceType, unit.Subproject);
        var others = await db.ComputingUnits.IgnoreQueryFilters().AsNoTracking()
            .Where(u => u.PoolId == unit.PoolId && u.Region == unit.Region && u.InstanceType == unit.InstanceType && u.Subproject == unit.Subproject && u.Id != unit.Id)
            .SumAsync(u => u.Replicas, ct);
        if (others + replicas > share)
        {
            throw new AtelierException(ErrorCatalog.b_agent_computingunitnotinsufficient,
                new Dictionary<string, string> { ["Region"] = unit.Region, ["InstanceType"] = unit.InstanceType, ["Subproject"] = unit.Subproject.Length == 0 ? "none" : unit.Subproject },
                errCode: ErrCodes.CapacityExhausted, errMessage: $"{replicas} replicas asked for, {Math.Max(0, share - others)} of {share} left");
        }
    }

    private async Task<ComputingUnit> FindAsync(string agentRef, string unitId, CancellationToken ct, bool tracking = true)
    {
        var agent = await jobs.FindAgentAsync(agentRef, ct);
        var q = tracking ? db.ComputingUnits : db.ComputingUnits.AsNoTracking();
        return await q.FirstOrDefaultAsync(u => u.Id == unitId && u.AgentId == agent.Id, ct)
               ?? throw AtelierException.InvalidInput("unitId", $"agent {agent.Name} has no computing unit {unitId}", 404);
    }

    private async Task<AgentFunction> FunctionOfAsync(ComputingUnit unit, CancellationToken ct) =>
        (unit.FunctionId is null ? null : await db.AgentFunctions.FirstOrDefaultAsync(f => f.Id == unit.FunctionId, ct))
        ?? throw FunctionNotFound($"computing unit {unit.Id}");

    private async Task RemoveWorkloadAsync(AgentFunction function, CancellationToken ct)
    {
        try
        {
            var (region, backend) = await regions.ResolveAsync(function.Region, ct);
            await backend.DeleteWorkloadAsync(region, function.Name, ct);
        }
        catch (RuntimeException e)
        {
            throw RuntimeFailures.Map(e, ErrorCatalog.s_function_deletefunctionerror);
        }
    }

    private async Task RevokeUnitKeysAsync(string unitId, CancellationToken ct)
    {
        var keys = await db.PlatformKeys.AsNoTracking().Where(k => k.UnitId == unitId && k.RevokedAt == null).Select(k => k.Id).ToListAsync(ct);
        foreach (var id in keys)
        {
            await workers.RevokeKeyAsync(id, ct);
        }
    }

    private async Task<int?> ReadyAsync(AgentFunction function, CancellationToken ct)
    {
        try
        {
            var (region, backend) = await regions.ResolveAsync(function.Region, ct);
            var seen = await backend.ObserveWorkloadAsync(region, function.Name, ct);
            return seen.Exists ? seen.ReadyReplicas : 0;
        }
        catch (RuntimeException)
        {
            return null;
        }
    }

    private async Task<List<ComputingUnitDto>> ToDtosAsync(IReadOnlyList<ComputingUnit> units, CancellationToken ct)
    {
        var fids = units.Where(u => u.FunctionId is not null).Select(u => u.FunctionId!).ToList();
        var functions = await db.AgentFunctions.AsNoTracking().Where(f => fids.Contains(f.Id)).ToDictionaryAsync(f => f.Id, ct);
        var poolIds = units.Select(u => u.PoolId).Distinct().ToList();
        var regionRows = await db.PoolRegions.AsNoTracking().Where(r => poolIds.Contains(r.PoolId)).ToListAsync(ct);
        var list = new List<ComputingUnitDto>();
        foreach (var u in units)
        {
            var fn = u.FunctionId is not null && functions.TryGetValue(u.FunctionId, out var f) ? f : null;
            var region = regionRows.FirstOrDefault(r => r.PoolId == u.PoolId && r.Region == u.Region);
            var slots = region is null ? 0 : PoolCapacity.InstanceTypes(region).FirstOrDefault(t => t.Name == u.InstanceType)?.SlotsPerReplica ?? 0;
            list.Add(new ComputingUnitDto(u.Id, u.AgentId, u.AgentVersionId, u.PoolId, u.Region, u.InstanceType, u.Subproject.Length == 0 ? null : u.Subproject,
                u.Replicas, u.Autoscale, slots, fn is null ? null : ToDto(fn, await ReadyAsync(fn, ct)), u.ScaleError, u.ScaleFailures, u.RetryScaleAt,
                u.CreatedAt, u.UpdatedAt));
        }

        return list;
    }

    public static AgentFunctionDto ToDto(AgentFunction f, int? ready) =>
        new(f.Id, f.UnitId, f.Name, f.Region, f.KeyId, f.AppliedReplicas, f.State, f.StateReason, ready, f.UpdatedAt);

    public static ScalingDecisionDto ToDto(ScalingDecision d) =>
        new(d.Id, d.At, d.Leader, d.Term, d.Queued, d.Running, d.SlotsPerReplica, d.TargetBusySlots, d.From, d.Wanted, d.Available, d.To, d.Reason,
            d.Applied, d.Error);
}
