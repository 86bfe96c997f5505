using Atelier.Contracts.Identity;

namespace Atelier.Core.Common;

/// <summary>Who is calling, as proven by the credential of the request.</summary>
public sealed record Caller(CallerKind Kind, string CredentialId, string? TenantId, string? AppId, IReadOnlyList<TokenScope> Scopes)
{
    /// <summary>For a session credential: the session's role.</summary>
    public string? RoleId { get; init; }

    /// <summary>For a computing unit's worker key: the agent whose jobs it leases (only those); null for a shared worker key.</summary>
    public string? AgentId { get; init; }

    public bool IsPlatformAdmin => Kind == CallerKind.PlatformAdmin;
    public bool Has(TokenScope scope) => IsPlatformAdmin || Scopes.Contains(scope);
}
