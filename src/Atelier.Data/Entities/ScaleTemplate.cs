namespace Atelier.Data.Entities;

/// <summary>
/// How a computing unit scales: between <see cref="MinReplicas"/> and <see cref="MaxReplicas"/>, aiming at
/// <see cref="TargetBusySlots"/> busy slots per replica; up once the need has lasted <see cref="ScaleUpWindowSeconds"/>,
/// down once it has lasted <see cref="ScaleDownWindowSeconds"/>, to zero after <see cref="IdleSecondsBeforeZero"/> without a job.
/// </summary>
public sealed class ScaleTemplate : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public int MinReplicas { get; set; }
    public int MaxReplicas { get; set; }
    public double TargetBusySlots { get; set; }
    public int ScaleUpWindowSeconds { get; set; }
    public int ScaleDownWindowSeconds { get; set; }
    public int IdleSecondsBeforeZero { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
