using System.Text.Json;
using System.Text.Json.Serialization;

namespace Atelier.Contracts.Identity;


public enum TenantState { Created, Initialized, Active, Inactive }


public enum TokenScope { Admin, App }

public sealed record CreateAccountRequest(string? Uid, string? Name);
public sealed record AccountDto(string Uid, string Name, DateTime CreatedAt);

public sealed record CreateTenantRequest(string? AccountUid, string? Name);
public sealed record TenantDto(string Id, string AccountUid, string Name, TenantState State,
    DateTime CreatedAt, DateTime? InitializedAt, DateTime? ActivatedAt);

/// <summary>The tenant's own settings. Created by init; replaced whole by PUT.</summary>
public sealed record TenantConfigDto(
    string? DisplayName,
    string? DefaultRole,
    int MaxConcurrentJobs,
    int ImageRetentionDays,
    int DefaultSessionSeconds,
    DateTime UpdatedAt,
    string? Language = null);

public sealed record PutTenantConfigRequest(
    string? DisplayName,
    string? DefaultRole,
    int? MaxConcurrentJobs,
    int? ImageRetentionDays,
    int? DefaultSessionSeconds,
    string? Language = null);

public sealed record TenantInitResult(TenantDto Tenant, IReadOnlyList<string> Roles, IReadOnlyList<string> Models);

public sealed record FunctionSettingsDto(JsonElement Settings, DateTime UpdatedAt);

public sealed record CreateAppRequest(string? Name, string? Description);
public sealed record UpdateAppRequest(string? Name, string? Description);
public sealed record AppDto(string Id, string Name, string? Description, DateTime CreatedAt, DateTime UpdatedAt);

public sealed record CreateRoleRequest(string? Name, string? Description);
public sealed record UpdateRoleRequest(string? Name, string? Description);
public sealed record RoleDto(string Id, string Name, string? Description, DateTime CreatedAt);

public sealed record CreateOperatorRequest(string? Id, string? Name, string? Email);
public sealed record OperatorDto(string Id, string Name, string? Email, DateTime CreatedAt);

/// <summary>One audited change; <c>requestId</c> is the server's id of the call, <c>clientRequestId</c> the <c>X-Request-Id</c> the client sent.</summary>
public sealed record AuditEntryDto(string Id, string? TenantId, string OperatorId, string Action,
    string ResourceType, string ResourceId, string CredentialId, string RequestId, DateTime At, string? ClientRequestId = null);

/// <summary><c>AgentId</c> (id or name): where the token's A1111 and predict calls go; absent, the tenant's default agent.</summary>
public sealed record IssueTokenRequest(string? Name, IReadOnlyList<TokenScope>? Scopes, DateTime? ExpiresAt, long? SessionSecondsCap = null, string? AgentId = null);

/// <summary>Changes the per-token cap on total ended-session seconds; null removes it.</summary>
public sealed record UpdateTokenRequest(long? SessionSecondsCap);

/// <summary>A token as listed: never its secret.</summary>
public sealed record TokenDto(string Id, string AppId, string Name, IReadOnlyList<TokenScope> Scopes,
    string DisplayPrefix, DateTime CreatedAt, DateTime? ExpiresAt, bool Disabled, DateTime? RevokedAt,
    DateTime? LastUsedAt, long TotalEndedSessionSeconds, long? SessionSecondsCap, string? AgentId = null);

/// <summary>The answer to issuing a token: the secret appears here once and never again.</summary>
public sealed record IssuedTokenDto(TokenDto Token, string Secret);

/// <summary>Who the caller is, as the server sees its credential.</summary>
public sealed record WhoAmIDto(string Kind, string CredentialId, string? TenantId, string? AppId, IReadOnlyList<TokenScope> Scopes);
