namespace Atelier.Data.Entities;

public sealed class ApiToken : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AppId { get; set; }
    public required string Name { get; set; }
    /// <summary>SHA-256 of the whole secret; the secret itself is never stored.</summary>
    public required byte[] SecretHash { get; set; }
    /// <summary>The first characters of the secret, enough to recognise it in a list.</summary>
    public required string DisplayPrefix { get; set; }
    public TokenScopes Scopes { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? ExpiresAt { get; set; }
    public bool Disabled { get; set; }
    public DateTime? RevokedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    /// <summary>Seconds of every ended session of this token, added exactly once per session when it ends.</summary>
    public long TotalEndedSessionSeconds { get; set; }
    /// <summary>When set, no new session opens once the total reaches it.</summary>
    public long? SessionSecondsCap { get; set; }
    /// <summary>The token's default checkpoint (a model version), used when a request names none.</summary>
    public string? CheckpointVersionId { get; set; }
    /// <summary>The agent the token's A1111 and predict calls go to; null: the tenant's default agent.</summary>
    public string? AgentId { get; set; }
}
