namespace Atelier.Contracts.Sessions;

/// <summary>What a session is for: the studio (checked on every studio request) or direct API calls.</summary>
public enum SessionMode { Interactive, Api }

public enum SessionState { Active, Ended }

/// <summary>Opens a session for one end user. <c>expiredAt</c> defaults to now plus the tenant's default session length.</summary>
public sealed record CreateSessionRequest(string? EndUserId, string? Role, string? Mode, string? ResourceConfigId, DateTime? ExpiredAt);

public sealed record RefreshSessionRequest(DateTime? ExpiredAt);

/// <summary>Validates a session credential for a surface (<c>interactive</c> for the studio, <c>api</c> for predict calls).</summary>
public sealed record CheckSessionRequest(string? Credential, string? Mode);

/// <summary>A session as the API shows it. <c>EndError</c> is set when the sweeper could not end it (it is then left
/// alone by later sweeps, until an explicit end succeeds).</summary>
public sealed record SessionDto(
    string Id,
    string AppId,
    string TokenId,
    string EndUserId,
    string RoleId,
    string RoleName,
    SessionMode Mode,
    string? ResourceConfigId,
    SessionState State,
    DateTime CreatedAt,
    DateTime ExpiredAt,
    DateTime? EndedAt,
    string? EndReason,
    long? DurationSeconds,
    string CredentialPrefix,
    string? EndError = null);

/// <summary>The answer to opening a session: the credential appears here once and never again.</summary>
public sealed record CreatedSessionDto(SessionDto Session, string Credential, string StudioUrl);

public sealed record SessionCheckDto(string SessionId, string TenantId, string AppId, string RoleId, string RoleName,
    SessionMode Mode, DateTime ExpiredAt, long RemainingSeconds, string? ResourceConfigId = null, bool Dedicated = false);

/// <summary><c>AgentId</c> (id or name): where the jobs of sessions with this config go; absent, the token's agent, else the tenant's default.</summary>
/// <c>FunctionTemplate</c> (id or name): each session of the config gets its own instance of that template, whose web UI
/// is the session's studio; <c>InstanceParameters</c> fill it.
public sealed record ResourceConfigRequest(string? Id, string? Name, string? Engine, string? InstanceType, string? ModelId, int? InstanceCount, string? AgentId = null,
    string? FunctionTemplate = null, System.Text.Json.JsonElement? InstanceParameters = null);

public sealed record ResourceConfigDto(string Id, string Name, string Engine, string InstanceType, string? ModelId,
    int InstanceCount, DateTime CreatedAt, DateTime UpdatedAt, string? AgentId = null, string? FunctionTemplateId = null,
    System.Text.Json.JsonElement? InstanceParameters = null);
