using Atelier.Contracts.Identity;

namespace Atelier.Core.Common;

/// <summary>Who is calling, as proven by the credential of the request.</summary>
public sealed record Caller(CallerKind Kind, string CredentialId, string? TenantId, string? AppId, IReadOnlyList<TokenScope> Scopes)
{
    /// <summary>For a session credential: the session's role.</summary>
    public string? RoleId { get; init; }

    public bool IsPlatformAdmin => Kind == CallerKind.PlatformAdmin;
    public bool Has(TokenScope scope) => IsPlatformAdmin || Scopes.Contains(scope);
}
