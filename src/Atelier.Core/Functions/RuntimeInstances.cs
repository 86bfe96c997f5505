using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Functions;

/// <summary>The operator gauges' view of the runtime: the ready instances of every function and unit, all tenants.</summary>
public sealed class RuntimeInstances(AtelierDb db, RuntimeRegions regions)
{
    /// <summary>
    /// The ready instances of every function and every unit, as their region's backend reports them (on the local
    /// backend, this replica's). A region whose backend does not answer is left out of the reading, not the others.
    /// </summary>
    public async Task<IReadOnlyList<InstanceReading>> ReadInstancesAsync(CancellationToken ct)
    {
        var functions = await db.Functions.IgnoreQueryFilters().AsNoTracking().Select(f => new { f.Id, f.TenantId, f.Region }).ToListAsync(ct);
        var units = await db.AgentFunctions.IgnoreQueryFilters().AsNoTracking()
            .Join(db.ComputingUnits.IgnoreQueryFilters(), f => f.UnitId, u => u.Id, (f, u) => new { f.Name, u.Id, u.AgentId, u.TenantId, f.Region })
            .ToListAsync(ct);
        var readings = new List<InstanceReading>();
        foreach (var region in functions.Select(f => f.Region).Concat(units.Select(u => u.Region)).Distinct(StringComparer.Ordinal))
        {
            IReadOnlyDictionary<string, int> ready;
            try
            {
                var (runtime, backend) = await regions.ResolveAsync(region, ct);
                ready = await backend.ReadyInstancesAsync(runtime, ct);
            }
            catch (Exception e) when (e is not OutOfMemoryException && !(e is OperationCanceledException && ct.IsCancellationRequested))
            {
                continue;
            }

            readings.AddRange(functions.Where(f => f.Region == region)
                .Select(f => new InstanceReading("function", f.Id, null, f.TenantId, region, ready.GetValueOrDefault(FunctionConfigs.KeyOf(f.Id).Name))));
            readings.AddRange(units.Where(u => u.Region == region)
                .Select(u => new InstanceReading("unit", u.Id, u.AgentId, u.TenantId, region, ready.GetValueOrDefault(u.Name))));
        }

        return readings;
    }
}

/// <summary>The ready instances of one function or unit (<paramref name="Kind"/>), with what an operator groups them by.</summary>
public sealed record InstanceReading(string Kind, string Id, string? AgentId, string TenantId, string Region, int Ready);
