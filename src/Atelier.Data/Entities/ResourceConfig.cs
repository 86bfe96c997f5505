namespace Atelier.Data.Entities;

/// <summary>A dedicated resource spec a session can ask for: engine, instance type, model, instance count.</summary>
public sealed class ResourceConfig : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Engine { get; set; }
    public required string InstanceType { get; set; }
    public string? ModelId { get; set; }
    public int InstanceCount { get; set; }
    /// <summary>The agent the sessions of this config send their jobs to; null: the token's, else the tenant's default.</summary>
    public string? AgentId { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
