namespace Atelier.Data.Entities;

/// <summary>An agent of a tenant: what jobs are submitted to. Each tenant gets a "default" agent at init;
/// an agent with computing units is served by their workers only, any other by the shared workers.</summary>
public sealed class Agent : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
