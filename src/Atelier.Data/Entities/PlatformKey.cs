namespace Atelier.Data.Entities;

/// <summary>A platform admin key (the installer's credential), stored hashed like tokens.</summary>
public sealed class PlatformKey
{
    public required string Id { get; set; }
    /// <summary>admin (the installer's key) or worker (a worker process: lease, heartbeat, complete, nothing else).</summary>
    public string Scope { get; set; } = "admin";
    public required byte[] SecretHash { get; set; }
    public required string DisplayPrefix { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
    /// <summary>A name the operator chose (worker keys), to tell keys apart in the list.</summary>
    public string? Name { get; set; }
    /// <summary>When the key was last used, written at most once a minute.</summary>
    public DateTime? LastUsedAt { get; set; }
    /// <summary>For a computing unit's key: the tenant, agent and unit it serves (it leases that agent's jobs only); null for a shared worker key.</summary>
    public string? TenantId { get; set; }
    public string? AgentId { get; set; }
    public string? UnitId { get; set; }
}
