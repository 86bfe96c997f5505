namespace Atelier.Data.Entities;

/// <summary>
/// A function: its draft configuration (<c>LATEST</c>, as JSON), where it runs, the configs that shape its scaling
/// and the state the reconciler last saw. <see cref="Generation"/> counts changes of what should run;
/// <see cref="AppliedGeneration"/> is the one the backend last accepted.
/// </summary>
public sealed class Function : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string ServiceId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public required string Region { get; set; }
    public string? TemplateId { get; set; }
    public string? InstanceParametersJson { get; set; }
    public required string ConfigJson { get; set; }
    public string State { get; set; } = "pending";
    public string? StateReason { get; set; }
    public long Generation { get; set; }
    public long AppliedGeneration { get; set; }
    public int ManualInstances { get; set; }
    public int? ProvisionedInstances { get; set; }
    public int? ReservedConcurrency { get; set; }
    public string? AsyncConfigJson { get; set; }
    public int NextVersion { get; set; } = 1;
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
