namespace Atelier.Data.Entities;

/// <summary>
/// The latest live preview of a running job (a small PNG the worker sends with its heartbeats), kept apart from the
/// job's row so that reading and claiming jobs never carries image bytes. One row per job, replaced as it goes.
/// </summary>
public sealed class JobPreview
{
    public required string JobId { get; set; }
    public required string TenantId { get; set; }
    public int Attempt { get; set; }
    public int Step { get; set; }
    public required byte[] Png { get; set; }
    public DateTime UpdatedAt { get; set; }
}
