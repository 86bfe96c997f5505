namespace Atelier.Data.Entities;

/// <summary>An HTTP trigger (anonymous or authenticated, its methods) or a timer trigger (cron, payload) of a function.</summary>
public sealed class FunctionTrigger : ITenantOwned
{
    public required string FunctionId { get; set; }
    public required string Name { get; set; }
    public required string TenantId { get; set; }
    public required string Kind { get; set; }
    public string? Qualifier { get; set; }
    public bool Anonymous { get; set; }
    public string MethodsJson { get; set; } = "[]";
    public string? Cron { get; set; }
    public string? Payload { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTime? NextRunAt { get; set; }
    public DateTime? LastRunAt { get; set; }
    public DateTime CreatedAt { get; set; }
}
