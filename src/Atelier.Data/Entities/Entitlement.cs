namespace Atelier.Data.Entities;

/// <summary>
/// Limits on a tenant's jobs (<see cref="Scope"/> <c>*</c>) or one app's (an app id), checked before a job is queued:
/// jobs queued or running at once, jobs per period, and an image-credit balance (one credit per image). Null: no limit.
/// </summary>
public sealed class Entitlement : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Scope { get; set; }
    public int? MaxConcurrentJobs { get; set; }
    public int? MaxJobsPerPeriod { get; set; }
    public int PeriodSeconds { get; set; } = 86400;
    public long? Credits { get; set; }
    public DateTime UpdatedAt { get; set; }
}
