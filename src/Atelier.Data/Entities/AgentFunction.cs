namespace Atelier.Data.Entities;

/// <summary>
/// The workload that runs a computing unit's workers (<c>atelier worker</c> for the unit's agent) on its region's backend:
/// worker processes on <c>local</c>, a Deployment on Kubernetes. Holds the unit's worker key, sealed, so the workload can
/// be applied again (a new leader, a restart) with the same credential.
/// </summary>
public sealed class AgentFunction : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string UnitId { get; set; }
    /// <summary>The workload's name on the backend.</summary>
    public required string Name { get; set; }
    public required string Region { get; set; }
    public required string KeyId { get; set; }
    public required byte[] KeyCipher { get; set; }
    /// <summary>The replicas the backend last accepted.</summary>
    public int AppliedReplicas { get; set; }
    public string State { get; set; } = "pending";
    public string? StateReason { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
