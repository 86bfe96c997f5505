using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Core.Functions;
using Atelier.Data;
using Atelier.Data.Entities;
using Atelier.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Agents;

/// <summary>
/// Scales every computing unit from its agent's queue (<see cref="ScaleRule"/>), in the leader only, every
/// <see cref="AgentsOptions.ScaleIntervalSeconds"/> or when woken. Each pass also keeps the workloads themselves right: a
/// unit whose workload its backend lacks (a new leader on <c>local</c>, a cluster that lost it) or whose spec changed
/// (another version, a new worker key after a revocation) is applied in full. A failed backend call is recorded on the
/// unit and retried with exponential backoff. Every decision that changes something, or fails, is stored with its inputs.
/// The leader asks its lock at the start of each pass and again before it stores what a backend call did (a call can
/// take long): a replica whose lock is gone, though its next leader check is still to come, while another replica may
/// lead already, stops there, so a unit is never scaled by two leaders for one decision.
/// </summary>
public sealed partial class Autoscaler(IServiceScopeFactory scopes, TimeProvider clock, IOptions<AgentsOptions> options, AutoscaleSignal signal,
    ILogger<Autoscaler> logger)
{
    /// <summary>The workloads this replica applied on a backend (local ones live only as long as this process leads).</summary>
    private readonly HashSet<(string Region, string Name)> _applied = [];

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    public AutoscaleSignal Signal => signal;

    /// <summary>One pass over every unit, as leader <paramref name="leader"/> in <paramref name="term"/>; answers the decisions applied.</summary>
    /// <param name="stillLeading">
    /// Asks the leader lock now (<c>Leadership.ConfirmAsync</c>): false once this replica no longer leads, its term then
    /// ended (which cancels <paramref name="ct"/>), and the pass stops with <see cref="OperationCanceledException"/>.
    /// </param>
    public async Task<int> RunPassAsync(string leader, long term, Func<CancellationToken, Task<bool>> stillLeading, CancellationToken ct)
    {
        async Task LeadingAsync()
        {
            if (!await stillLeading(ct))
            {
                ct.ThrowIfCancellationRequested();
                throw new OperationCanceledException($"replica {leader} no longer leads (term {term})");
            }
        }

        await LeadingAsync();
        // A snapshot for what every unit's decision reads (demand, capacity); each unit is then changed in a scope of its
        // own, so one unit's failure (its row deleted meanwhile, a backend that throws) never stops the others.
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var units = await db.ComputingUnits.IgnoreQueryFilters().AsNoTracking().OrderBy(u => u.CreatedAt).ThenBy(u => u.Id).ToListAsync(ct);
        var snapshot = new PassSnapshot(
            units,
            await db.AgentVersions.IgnoreQueryFilters().AsNoTracking().ToDictionaryAsync(v => v.Id, ct),
            await db.ScaleTemplates.IgnoreQueryFilters().AsNoTracking().ToDictionaryAsync(t => t.Id, ct),
            await db.PoolRegions.AsNoTracking().ToListAsync(ct),
            [.. (await db.Jobs.IgnoreQueryFilters().AsNoTracking().Where(j => j.State == JobStates.Queued || j.State == JobStates.Running)
                .GroupBy(j => new { j.AgentId, j.State }).Select(g => new { g.Key.AgentId, g.Key.State, Count = g.Count() }).ToListAsync(ct))
                .Select(c => (c.AgentId, c.State, c.Count))]);
        var keep = (await db.AgentFunctions.IgnoreQueryFilters().AsNoTracking().Select(f => new { f.Region, f.Name }).ToListAsync(ct))
            .Select(f => (f.Region, f.Name)).ToHashSet();
        var applied = 0;
        foreach (var unit in units)
        {
            try
            {
                if (await DecideAsync(unit, snapshot, leader, term, LeadingAsync, ct))
                {
                    applied++;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogUnitFailed(logger, unit.Id, e);
            }
        }

        await SweepAsync(scope.ServiceProvider.GetRequiredService<RuntimeRegions>(), keep, ct);
        return applied;
    }

    private sealed record PassSnapshot(List<ComputingUnit> Units, Dictionary<string, AgentVersion> Versions, Dictionary<string, ScaleTemplate> Templates,
        List<PoolRegion> PoolRegions, List<(string AgentId, string State, int Count)> Counts);

    /// <summary>Decides and applies one unit in its own scope; <paramref name="seen"/> (the snapshot's copy) takes the replicas decided.</summary>
    private async Task<bool> DecideAsync(ComputingUnit seen, PassSnapshot snap, string leader, long term, Func<Task> leading, CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var regions = scope.ServiceProvider.GetRequiredService<RuntimeRegions>();
        var workloads = scope.ServiceProvider.GetRequiredService<AgentWorkloads>();
        var unit = await db.ComputingUnits.IgnoreQueryFilters().FirstOrDefaultAsync(u => u.Id == seen.Id, ct);
        if (unit is null)
        {
            return false; // deleted since the snapshot
        }

        db.TenantScope = unit.TenantId;
        var now = Now;
        var function = unit.FunctionId is null ? null : await db.AgentFunctions.IgnoreQueryFilters().FirstOrDefaultAsync(f => f.Id == unit.FunctionId, ct);
        if (function is null)
        {
            await RecordOnceAsync(db, unit, leader, term, "no agent function", UnitService.FunctionNotFound($"computing unit {unit.Id}").ErrMessage, ct);
            return false;
        }

        if (unit.RetryScaleAt > now)
        {
            return false;
        }

        if (await db.PlatformKeys.AsNoTracking().AnyAsync(k => k.Id == function.KeyId && k.RevokedAt != null, ct))
        {
            // Its key was revoked (by the platform admin): a fresh one, and the workload applied again with it.
            var (key, cipher) = workloads.IssueKey(unit);
            db.PlatformKeys.Add(key);
            function.KeyId = key.Id;
            function.KeyCipher = cipher;
            function.State = "pending";
            LogRekeyed(logger, unit.Id, key.Id);
        }

        var region = snap.PoolRegions.FirstOrDefault(r => r.PoolId == unit.PoolId && r.Region == unit.Region);
        var type = region is null ? null : PoolCapacity.InstanceTypes(region).FirstOrDefault(t => t.Name == unit.InstanceType);
        if (region is null || type is null || !snap.Versions.TryGetValue(unit.AgentVersionId, out var version)
            || !snap.Templates.TryGetValue(version.ScaleTemplateId, out var template))
        {
            await RecordOnceAsync(db, unit, leader, term, "configuration missing", "the unit's pool region, instance type, version or scale template is gone", ct);
            return false;
        }

        var agentUnits = snap.Units.Where(u => u.AgentId == unit.AgentId && u.Autoscale).ToList();
        var share = Math.Max(1, agentUnits.Count);
        var index = agentUnits.FindIndex(u => u.Id == unit.Id);
        int Split(int total) => index < 0 ? total : (total / share) + (index < total % share ? 1 : 0);
        var queued = Split(snap.Counts.Where(c => c.AgentId == unit.AgentId && c.State == JobStates.Queued).Sum(c => c.Count));
        var running = Split(snap.Counts.Where(c => c.AgentId == unit.AgentId && c.State == JobStates.Running).Sum(c => c.Count));
        var available = PoolCapacity.ShareCapacity(region, unit.InstanceType, unit.Subproject)
                        - PoolCapacity.Used(snap.Units, unit.PoolId, unit.Region, unit.InstanceType, unit.Subproject, unit.Id);
        var from = unit.Replicas;
        var decision = unit.Autoscale
            ? ScaleRule.Decide(
                new ScaleRule.Template(template.MinReplicas, template.MaxReplicas, template.TargetBusySlots, template.ScaleUpWindowSeconds,
                    template.ScaleDownWindowSeconds, template.IdleSecondsBeforeZero),
                new ScaleRule.Input(now, queued, running, type.SlotsPerReplica, from, available, unit.UpSince, unit.DownSince, unit.LastBusyAt))
            : new ScaleRule.Decision(from, from, "manual", null, null, queued + running > 0 ? now : unit.LastBusyAt, type.SlotsPerReplica);
        var windowStarted = (decision.UpSince is not null && unit.UpSince is null) || (decision.DownSince is not null && unit.DownSince is null);
        unit.UpSince = decision.UpSince;
        unit.DownSince = decision.DownSince;
        unit.LastBusyAt = decision.LastBusyAt;
        unit.Replicas = decision.To;

        string? error = null;
        var applied = false;
        var changed = decision.To != function.AppliedReplicas || function.State != "ready";
        var calling = changed || !_applied.Contains((function.Region, function.Name));
        if (calling)
        {
            try
            {
                var (runtimeRegion, backend) = await regions.ResolveAsync(unit.Region, ct);
                var observed = function.State == "ready" ? await backend.ObserveWorkloadAsync(runtimeRegion, function.Name, ct) : null;
                if (observed is { Exists: true } && _applied.Contains((function.Region, function.Name)))
                {
                    await backend.ScaleWorkloadAsync(runtimeRegion, function.Name, decision.To, ct);
                }
                else
                {
                    await backend.ApplyWorkloadAsync(runtimeRegion, workloads.Spec(runtimeRegion, unit, version, type, function, decision.To), ct);
                }

                _applied.Add((function.Region, function.Name));
                function.AppliedReplicas = decision.To;
                function.State = "ready";
                function.StateReason = null;
                function.UpdatedAt = now;
                unit.ScaleFailures = 0;
                unit.RetryScaleAt = null;
                unit.ScaleError = null;
                applied = true;
            }
            catch (RuntimeException e)
            {
                error = $"{e.Code}: {e.Message}";
                unit.ScaleFailures++;
                var wait = Math.Min(options.Value.MaxScaleBackoffSeconds, Math.Pow(2, Math.Min(unit.ScaleFailures - 1, 20)));
                unit.RetryScaleAt = now.AddSeconds(wait);
                unit.ScaleError = error.Length > 2000 ? error[..2000] : error;
                function.State = "failed";
                function.StateReason = unit.ScaleError;
                function.UpdatedAt = now;
                // The replicas stay what the backend has: the decision is tried again after the backoff.
                unit.Replicas = from == decision.To ? from : function.AppliedReplicas;
                LogScaleFailed(logger, unit.Id, decision.To, unit.ScaleFailures, wait, error);
            }
        }

        if (decision.To != from || error is not null || windowStarted)
        {
            db.ScalingDecisions.Add(new ScalingDecision
            {
                Id = Ids.New("scd", clock), TenantId = unit.TenantId, UnitId = unit.Id, At = now, Leader = leader, Term = term, Queued = queued, Running = running,
                SlotsPerReplica = type.SlotsPerReplica, TargetBusySlots = decision.BusyPerReplica, From = from, Wanted = decision.Wanted, Available = Math.Max(0, available),
                To = decision.To, Reason = decision.Reason.Length > 500 ? decision.Reason[..500] : decision.Reason, Applied = error is null && decision.To != from,
                Error = error?.Length > 2000 ? error[..2000] : error,
            });
            LogDecision(logger, unit.Id, from, decision.To, queued, running, type.SlotsPerReplica, decision.Reason, error ?? "");
        }

        unit.UpdatedAt = unit.Replicas != from ? now : unit.UpdatedAt;
        if (calling)
        {
            // The call may have taken long: what it did is stored only while this replica still leads.
            await leading();
        }

        await db.SaveChangesAsync(ct);
        seen.Replicas = unit.Replicas;
        if (decision.To != from || error is not null)
        {
            await TrimAsync(db, unit.Id, ct);
        }

        return applied;
    }

    /// <summary>Stops what this replica runs for units that are gone (removed through another replica, or while it was not leader).</summary>
    private async Task SweepAsync(RuntimeRegions regions, HashSet<(string, string)> keep, CancellationToken ct)
    {
        foreach (var (regionName, name) in _applied.Where(a => !keep.Contains(a)).ToList())
        {
            try
            {
                var (region, backend) = await regions.ResolveAsync(regionName, ct);
                await backend.DeleteWorkloadAsync(region, name, ct);
                _applied.Remove((regionName, name));
            }
            catch (Exception e) when (e is RuntimeException or AtelierException)
            {
                LogSweepFailed(logger, name, e.Message);
            }
        }
    }

    /// <summary>Forgets what this replica applied: it is no longer the leader (its local workloads are stopped by the caller).</summary>
    public async Task StepDownAsync(CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var regions = scope.ServiceProvider.GetRequiredService<RuntimeRegions>();
        foreach (var (regionName, name) in _applied.ToList())
        {
            try
            {
                var (region, backend) = await regions.ResolveAsync(regionName, ct);
                if (backend.Name == "local")
                {
                    await backend.DeleteWorkloadAsync(region, name, ct);
                }
            }
            catch (Exception e) when (e is RuntimeException or AtelierException)
            {
                LogSweepFailed(logger, name, e.Message);
            }
        }

        _applied.Clear();
    }

    private async Task RecordOnceAsync(AtelierDb db, ComputingUnit unit, string leader, long term, string reason, string? error, CancellationToken ct)
    {
        if (unit.ScaleError == error)
        {
            return;
        }

        unit.ScaleError = error;
        db.ScalingDecisions.Add(new ScalingDecision
        {
            Id = Ids.New("scd", clock), TenantId = unit.TenantId, UnitId = unit.Id, At = Now, Leader = leader, Term = term, From = unit.Replicas, Wanted = unit.Replicas,
            To = unit.Replicas, Reason = reason, Error = error,
        });
        await db.SaveChangesAsync(ct);
    }

    private async Task TrimAsync(AtelierDb db, string unitId, CancellationToken ct)
    {
        var kept = options.Value.DecisionsKept;
        var cutoff = await db.ScalingDecisions.Where(d => d.UnitId == unitId).OrderByDescending(d => d.At).ThenByDescending(d => d.Id).Skip(kept)
            .Select(d => (DateTime?)d.At).FirstOrDefaultAsync(ct);
        if (cutoff is { } at)
        {
            await db.ScalingDecisions.Where(d => d.UnitId == unitId && d.At <= at).ExecuteDeleteAsync(ct);
        }
    }

    [LoggerMessage(6100, LogLevel.Information, "Unit {UnitId}: {From} -> {To} replicas ({Queued} queued, {Running} running, {Slots} slots each): {Reason} {Error}")]
    private static partial void LogDecision(ILogger logger, string unitId, int from, int to, int queued, int running, int slots, string reason, string error);

    [LoggerMessage(6101, LogLevel.Warning, "Unit {UnitId}: scaling to {Replicas} failed ({Failures} in a row, next try in {Wait} s): {Error}")]
    private static partial void LogScaleFailed(ILogger logger, string unitId, int replicas, int failures, double wait, string error);

    [LoggerMessage(6102, LogLevel.Warning, "Unit {UnitId}: its worker key was revoked; new key {KeyId} issued")]
    private static partial void LogRekeyed(ILogger logger, string unitId, string keyId);

    [LoggerMessage(6103, LogLevel.Warning, "Workload {Name} of a removed unit could not be stopped: {Error}")]
    private static partial void LogSweepFailed(ILogger logger, string name, string error);

    [LoggerMessage(6104, LogLevel.Error, "Unit {UnitId}: the autoscaler's pass failed for it (the other units went on)")]
    private static partial void LogUnitFailed(ILogger logger, string unitId, Exception e);
}
