using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Agents;
using Atelier.Data.Entities;

namespace Atelier.Core.Agents;

/// <summary>A pool region's instance types and sub-projects as stored (JSON), and the capacity a unit may draw on.</summary>
public static class PoolCapacity
{
    public sealed record InstanceType(string Name, int Capacity, int SlotsPerReplica, int Gpus, Dictionary<string, string> NodeSelector);

    public sealed record Subproject(string Name, string InstanceType, int Capacity, string? TenantId);

    public static IReadOnlyList<InstanceType> InstanceTypes(PoolRegion r) =>
        JsonSerializer.Deserialize<List<InstanceType>>(r.InstanceTypesJson, AtelierJson.Options) ?? [];

    public static IReadOnlyList<Subproject> Subprojects(PoolRegion r) =>
        JsonSerializer.Deserialize<List<Subproject>>(r.SubprojectsJson, AtelierJson.Options) ?? [];

    /// <summary>
    /// The replicas a share holds: a sub-project's capacity, or (no sub-project) the instance type's capacity less every
    /// sub-project's share of it.
    /// </summary>
    public static int ShareCapacity(PoolRegion r, string instanceType, string subproject)
    {
        var type = InstanceTypes(r).FirstOrDefault(t => t.Name == instanceType);
        if (type is null)
        {
            return 0;
        }

        var subs = Subprojects(r).Where(s => s.InstanceType == instanceType).ToList();
        return subproject.Length > 0
            ? subs.FirstOrDefault(s => s.Name == subproject)?.Capacity ?? 0
            : Math.Max(0, type.Capacity - subs.Sum(s => s.Capacity));
    }

    /// <summary>The replicas of the units in one share (pool, region, instance type, sub-project), by unit.</summary>
    public static int Used(IEnumerable<ComputingUnit> units, string poolId, string region, string instanceType, string subproject, string? exceptUnitId = null) =>
        units.Where(u => u.PoolId == poolId && u.Region == region && u.InstanceType == instanceType && u.Subproject == subproject && u.Id != exceptUnitId)
            .Sum(u => u.Replicas);

    public static PoolRegionDto ToDto(PoolRegion r, string backend, IReadOnlyList<ComputingUnit> units) =>
        new(r.Region, backend,
            [.. InstanceTypes(r).Select(t => new InstanceTypeDto(t.Name, t.Capacity, t.SlotsPerReplica, t.Gpus, t.NodeSelector,
                units.Where(u => u.PoolId == r.PoolId && u.Region == r.Region && u.InstanceType == t.Name).Sum(u => u.Replicas)))],
            [.. Subprojects(r).Select(s => new SubprojectDto(s.Name, s.InstanceType, s.Capacity, s.TenantId,
                Used(units, r.PoolId, r.Region, s.InstanceType, s.Name)))],
            r.UpdatedAt);
}
