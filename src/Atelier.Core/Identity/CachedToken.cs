using Atelier.Contracts.Identity;

namespace Atelier.Core.Identity;

/// <summary>What a verified API token grants, remembered briefly so a hot token costs no database read.</summary>
internal sealed record CachedToken(string TokenId, string TenantId, string AppId, IReadOnlyList<TokenScope> Scopes, DateTime? ExpiresAt);
