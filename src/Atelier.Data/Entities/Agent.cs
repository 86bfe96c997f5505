namespace Atelier.Data.Entities;

/// <summary>An agent of a tenant: what jobs are submitted to. Each tenant gets a "default" agent at init.</summary>
public sealed class Agent : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}
