namespace Atelier.Data.Entities;

/// <summary>A time-limited session of one end user, opened with an API token.</summary>
public sealed class Session : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string AppId { get; set; }
    public required string TokenId { get; set; }
    public required string EndUserId { get; set; }
    public required string RoleId { get; set; }
    public required string Mode { get; set; }
    public string? ResourceConfigId { get; set; }
    /// <summary>SHA-256 of the end user's credential; the credential itself is never stored.</summary>
    public required byte[] CredentialHash { get; set; }
    public required string CredentialPrefix { get; set; }
    public required string State { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime ExpiredAt { get; set; }
    public DateTime? EndedAt { get; set; }
    public string? EndReason { get; set; }
    public long? DurationSeconds { get; set; }
    /// <summary>Why the session could not be ended (set by the sweeper, which then skips it and reports it).</summary>
    public string? EndError { get; set; }
    /// <summary>Bumped by every change, so end, refresh and the sweeper never act on a stale read.</summary>
    public long Version { get; set; }
}
