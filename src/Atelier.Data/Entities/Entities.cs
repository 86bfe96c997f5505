using Atelier.Contracts.Identity;

namespace Atelier.Data.Entities;

/// <summary>A row that belongs to one tenant: filtered by tenant on every read, checked on every write.</summary>
public interface ITenantOwned
{
    string TenantId { get; set; }
}

public sealed class Account
{
    public required string Uid { get; set; }
    public required string Name { get; set; }
    public DateTime CreatedAt { get; set; }
}

public sealed class Tenant
{
    public required string Id { get; set; }
    public required string AccountUid { get; set; }
    public required string Name { get; set; }
    public TenantState State { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? InitializedAt { get; set; }
    public DateTime? ActivatedAt { get; set; }
}

public sealed class TenantConfig : ITenantOwned
{
    public required string TenantId { get; set; }
    public string? DisplayName { get; set; }
    public string? DefaultRole { get; set; }
    public int MaxConcurrentJobs { get; set; }
    public int ImageRetentionDays { get; set; }
    public int DefaultSessionSeconds { get; set; }
    /// <summary>The global function settings, a JSON document validated against the published schema.</summary>
    public string FunctionSettingsJson { get; set; } = "{}";
    public DateTime UpdatedAt { get; set; }
    public DateTime FunctionSettingsUpdatedAt { get; set; }
}

public sealed class App : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}

public sealed class Role : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Description { get; set; }
    public DateTime CreatedAt { get; set; }
}

public sealed class Operator : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public string? Email { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>One mutating admin call: who (operator), with which credential, did what to which resource.</summary>
public sealed class AuditEntry
{
    public required string Id { get; set; }
    /// <summary>Null for platform-level changes (accounts, tenants).</summary>
    public string? TenantId { get; set; }
    public required string OperatorId { get; set; }
    public required string Action { get; set; }
    public required string ResourceType { get; set; }
    public required string ResourceId { get; set; }
    public required string CredentialId { get; set; }
    public required string RequestId { get; set; }
    public DateTime At { get; set; }
}

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
}

[Flags]
public enum TokenScopes
{
    None = 0,
    Admin = 1,
    App = 2,
}

/// <summary>A platform admin key (the installer's credential), stored hashed like tokens.</summary>
public sealed class PlatformKey
{
    public required string Id { get; set; }
    public required byte[] SecretHash { get; set; }
    public required string DisplayPrefix { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
}

/// <summary>A model of a tenant's library. Issue 4 grows this into versions and files; init installs the defaults.</summary>
public sealed class Model : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Type { get; set; }
    public string? Description { get; set; }
    public string? SourceUrl { get; set; }
    public DateTime CreatedAt { get; set; }
}

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
    /// <summary>Bumped by every change, so end, refresh and the sweeper never act on a stale read.</summary>
    public long Version { get; set; }
}

/// <summary>A dedicated resource spec a session can ask for: engine, instance type, model, instance count.</summary>
public sealed class ResourceConfig : ITenantOwned
{
    public required string Id { get; set; }
    public required string TenantId { get; set; }
    public required string Name { get; set; }
    public required string Engine { get; set; }
    public required string InstanceType { get; set; }
    public string? ModelId { get; set; }
    public int InstanceCount { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime UpdatedAt { get; set; }
}
