namespace Atelier.Data.Entities;

/// <summary>One decision of the autoscaler for one unit, with its inputs: what it saw, what it computed, what it applied.</summary>
public sealed class ScalingDecision : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string UnitId { get; set; }
    public DateTime At { get; set; }
    /// <summary>The leader replica and its term: a decision is applied once, by the leader that made it.</summary>
    public required string Leader { get; set; }
    public long Term { get; set; }
    public int Queued { get; set; }
    public int Running { get; set; }
    public int SlotsPerReplica { get; set; }
    public double TargetBusySlots { get; set; }
    public int From { get; set; }
    public int Wanted { get; set; }
    /// <summary>Replicas the pool's capacity leaves for the unit.</summary>
    public int Available { get; set; }
    public int To { get; set; }
    public required string Reason { get; set; }
    public bool Applied { get; set; }
    public string? Error { get; set; }
}
