namespace Atelier.Data.Entities;

/// <summary>
/// An agent version placed in a pool region on an instance type (and optionally a sub-project), with its replicas: the
/// workers that serve the agent's jobs. Backed by an <see cref="AgentFunction"/>; scaled by the autoscaler.
/// </summary>
public sealed class ComputingUnit : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AgentId { get; set; }
    public required string AgentVersionId { get; set; }
    public required string PoolId { get; set; }
    public required string Region { get; set; }
    public required string InstanceType { get; set; }
    /// <summary>The sub-project whose share the unit uses; empty: the instance type's capacity outside every sub-project.</summary>
    public string Subproject { get; set; } = "";
    /// <summary>The replicas wanted now (the autoscaler's last decision, or the admin's when autoscaling is off).</summary>
    public int Replicas { get; set; }
    public bool Autoscale { get; set; } = true;
    public string? FunctionId { get; set; }
    /// <summary>When the need first went above (or below) the replicas, for the scale windows; null when it matches.</summary>
    public DateTime? UpSince { get; set; }
    public DateTime? DownSince { get; set; }
    /// <summary>When the agent last had a job queued or running (the idle clock for scaling to zero).</summary>
    public DateTime? LastBusyAt { get; set; }
    /// <summary>Failed scale calls in a row, and when the autoscaler may try again (exponential backoff).</summary>
    public int ScaleFailures { get; set; }
    public DateTime? RetryScaleAt { get; set; }
    public string? ScaleError { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
