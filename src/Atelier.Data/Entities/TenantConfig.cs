namespace Atelier.Data.Entities;

public sealed class TenantConfig : ITenantOwned
{
    public required string TenantId { get; set; }
    public string? DisplayName { get; set; }
    public string? DefaultRole { get; set; }
    public int MaxConcurrentJobs { get; set; }

    /// <summary>
    /// The tenant's jobs queued or running now, kept by the database itself (triggers on <c>jobs</c>: +1 when a job is
    /// queued, −1 when it ends or is deleted), never written by the application. The insert trigger refuses a job that
    /// would take it above <see cref="MaxConcurrentJobs"/> (<see cref="ActiveJobs.CapMessage"/>), so the cap is exact
    /// without a count or a lock taken by the submit. On PostgreSQL the ends are counted apart (<c>tenant_job_ends</c>,
    /// folded in from time to time): there the active count is this less the tenant's ends (<see cref="Data.ActiveJobs.PostgresEndsUp"/>).
    /// </summary>
    public int ActiveJobs { get; set; }
    public int ImageRetentionDays { get; set; }
    public int DefaultSessionSeconds { get; set; }
    /// <summary>The agent A1111 and predict calls go to when neither the token nor the session names one; null: the agent named <c>default</c>.</summary>
    public string? DefaultAgentId { get; set; }
    /// <summary>The language of error messages for the tenant's callers (<c>zh</c>, <c>en</c>); null: the server's default.</summary>
    public string? Language { get; set; }
    /// <summary>The global function settings, a JSON document validated against the published schema.</summary>
    public string FunctionSettingsJson { get; set; } = "{}";
    public DateTime UpdatedAt { get; set; }
    public DateTime FunctionSettingsUpdatedAt { get; set; }
}
