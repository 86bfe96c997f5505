using System.Collections.Concurrent;
using Atelier.Contracts.Identity;

namespace Atelier.Core.Identity;

/// <summary>What a verified API token grants, remembered briefly so a hot token costs no database read.</summary>
internal sealed record CachedToken(string TokenId, string TenantId, string AppId, IReadOnlyList<TokenScope> Scopes,
    DateTime? ExpiresAt, long CachedUntilTicks);

/// <summary>The in-memory cache of verified credentials and tenant states (singleton).</summary>
public sealed class AuthCache(TimeProvider clock)
{
    private readonly ConcurrentDictionary<string, CachedToken> _tokens = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (TenantState State, long Until)> _tenants = new(StringComparer.Ordinal);

    internal bool TryGetToken(string hashKey, out CachedToken token)
    {
        if (_tokens.TryGetValue(hashKey, out token!) && token.CachedUntilTicks > clock.GetUtcNow().UtcTicks)
        {
            return true;
        }

        return false;
    }

    internal void PutToken(string hashKey, CachedToken token)
    {
        if (_tokens.Count > 100_000)
        {
            _tokens.Clear();
        }

        _tokens[hashKey] = token;
    }

    /// <summary>Forgets a token at once (revoked, disabled, deleted).</summary>
    public void EvictToken(string tokenId)
    {
        foreach (var (key, value) in _tokens)
        {
            if (value.TokenId == tokenId)
            {
                _tokens.TryRemove(key, out _);
            }
        }
    }

    /// <summary>Forgets every token of an app (the app was deleted).</summary>
    public void EvictApp(string appId)
    {
        foreach (var (key, value) in _tokens)
        {
            if (value.AppId == appId)
            {
                _tokens.TryRemove(key, out _);
            }
        }
    }

    internal bool TryGetTenantState(string tenantId, out TenantState state)
    {
        if (_tenants.TryGetValue(tenantId, out var e) && e.Until > clock.GetUtcNow().UtcTicks)
        {
            state = e.State;
            return true;
        }

        state = default;
        return false;
    }

    internal void PutTenantState(string tenantId, TenantState state, TimeSpan ttl) =>
        _tenants[tenantId] = (state, clock.GetUtcNow().UtcTicks + ttl.Ticks);

    public void EvictTenant(string tenantId) => _tenants.TryRemove(tenantId, out _);

    private readonly ConcurrentDictionary<string, (Common.Caller Caller, long Until)> _keys = new(StringComparer.Ordinal);

    /// <summary>A verified platform admin key (by the hex of its hash), for a few seconds. Worker keys are never cached: a revocation holds at once.</summary>
    internal bool TryGetKey(string hashKey, out Common.Caller caller)
    {
        if (_keys.TryGetValue(hashKey, out var e) && e.Until > clock.GetUtcNow().UtcTicks)
        {
            caller = e.Caller;
            return true;
        }

        caller = null!;
        return false;
    }

    internal void PutKey(string hashKey, Common.Caller caller, TimeSpan ttl)
    {
        if (_keys.Count > 10_000)
        {
            _keys.Clear();
        }

        _keys[hashKey] = (caller, clock.GetUtcNow().UtcTicks + ttl.Ticks);
    }
}
