namespace Atelier.Data.Entities;

/// <summary>
/// A region config of a pool: the runtime region (<see cref="Region"/>, so its backend) and its instance types, each with
/// a capacity in replicas and the worker slots of one replica, optionally split into sub-projects (named capacity shares).
/// </summary>
public sealed class PoolRegion
{
    public required string PoolId { get; set; }
    public required string Region { get; set; }
    /// <summary>JSON array of instance types: name, capacity, slotsPerReplica, gpus, nodeSelector.</summary>
    public string InstanceTypesJson { get; set; } = "[]";
    /// <summary>JSON array of sub-projects: name, instanceType, capacity, tenantId (optional).</summary>
    public string SubprojectsJson { get; set; } = "[]";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
