namespace Atelier.Data.Entities;

/// <summary>A platform's pool of capacity, in one or more regions (<see cref="PoolRegion"/>); the platform admin owns it.</summary>
public sealed class ComputingPool
{
    public required string Id { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    /// <summary>The tenants that may place units in the pool, '\n'-separated; empty means every tenant.</summary>
    public string TenantIds { get; set; } = "";
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
