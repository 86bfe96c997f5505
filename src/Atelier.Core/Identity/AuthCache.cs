using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Identity;

/// <summary>
/// The in-memory cache of verified credentials and tenant states (singleton), each kept for
/// <see cref="AuthOptions.CacheSeconds"/> and forgotten at once when revoked, disabled or deleted on this replica.
/// </summary>
public sealed class AuthCache(TimeProvider clock, IOptions<AuthOptions> options)
{
    private readonly TtlCache<string, CachedToken> _tokens = new(clock, Lifetime(options), 100_000, StringComparer.Ordinal);
    private readonly TtlCache<string, TenantState> _tenants = new(clock, Lifetime(options), 100_000, StringComparer.Ordinal);
    private readonly TtlCache<string, Caller> _keys = new(clock, Lifetime(options), 10_000, StringComparer.Ordinal);

    /// <summary>How long a verified credential or a tenant state is trusted (also the model resolutions' lifetime).</summary>
    public static TimeSpan Lifetime(IOptions<AuthOptions> options) => TimeSpan.FromSeconds(Math.Max(0, options.Value.CacheSeconds));

    internal bool TryGetToken(string hashKey, out CachedToken token) => _tokens.TryGet(hashKey, out token);

    internal void PutToken(string hashKey, CachedToken token) => _tokens.Set(hashKey, token);

    /// <summary>Forgets a token at once (revoked, disabled, deleted).</summary>
    public void EvictToken(string tokenId) => _tokens.RemoveWhere(t => t.TokenId == tokenId);

    /// <summary>Forgets every token of an app (the app was deleted).</summary>
    public void EvictApp(string appId) => _tokens.RemoveWhere(t => t.AppId == appId);

    internal bool TryGetTenantState(string tenantId, out TenantState state) => _tenants.TryGet(tenantId, out state);

    internal void PutTenantState(string tenantId, TenantState state) => _tenants.Set(tenantId, state);

    public void EvictTenant(string tenantId) => _tenants.Remove(tenantId);

    /// <summary>A verified platform admin key (by the hex of its hash), for a few seconds. Worker keys are never cached: a revocation holds at once.</summary>
    internal bool TryGetKey(string hashKey, out Caller caller) => _keys.TryGet(hashKey, out caller);

    internal void PutKey(string hashKey, Caller caller) => _keys.Set(hashKey, caller);
}
