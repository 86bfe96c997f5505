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
    /// <summary>
    /// Dedicated compute for the studio: the function template each session of this config gets its own instance of
    /// (started for the session, stopped at its end); null: the session's studio is Atelier's own page.
    /// </summary>
    public string? FunctionTemplateId { get; set; }
    /// <summary>The instance parameters for <see cref="FunctionTemplateId"/> (JSON object).</summary>
    public string? InstanceParametersJson { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
