using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Identity;

/// <summary>
/// Turns the credential of a request into a <see cref="Caller"/>, and resolves the tenant a request acts in.
/// Malformed secrets are refused by their checksum before any database read.
/// </summary>
public sealed class Authenticator(AtelierDb db, AuthCache cache, TimeProvider clock)
{
    /// <summary>Verifies a bearer secret: missing → 401 <c>p_common_apitokenrequired</c>, junk or unknown → 401
    /// <c>p_token_invalidapitoken</c>, expired, disabled or revoked → 401 <c>b_session_tokennotvalid</c>.</summary>
    public async Task<Caller> AuthenticateAsync(string? secret, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(secret))
        {
            throw new AtelierException(ErrorCatalog.p_common_apitokenrequired);
        }

        if (Secrets.IsWellFormed(secret, Secrets.TokenPrefix))
        {
            return await AuthenticateTokenAsync(secret, ct);
        }

        if (secret.StartsWith(Secrets.SessionPrefix + "_", StringComparison.Ordinal))
        {
            // Session credentials are never cached: their expiry must hold to the second.
            var session = await Sessions.SessionService.ResolveCredentialAsync(db, secret, clock.GetUtcNow().UtcDateTime, ct);
            return new Caller(CallerKind.Session, session.Id, session.TenantId, session.AppId, []) { RoleId = session.RoleId };
        }

        var platform = Secrets.IsWellFormed(secret, Secrets.PlatformKeyPrefix);
        if (platform || Secrets.IsWellFormed(secret, Secrets.WorkerKeyPrefix))
        {
            var hash = Secrets.Hash(secret);
            var cacheKey = Convert.ToHexString(hash);
            // Worker keys are never cached: a revoked key must be refused at once on every replica, and a worker's
            // calls are few enough (a lease wait, a heartbeat a few times a second at most) for one indexed read each.
            if (platform && cache.TryGetKey(cacheKey, out var cached) && cached.Kind == CallerKind.PlatformAdmin)
            {
                return cached;
            }

            var key = await HotQueries.PlatformKeyByHash(db, hash, ct);
            if (key is not null && Secrets.HashEquals(key.SecretHash, hash) && key.Scope == (platform ? "admin" : "worker"))
            {
                if (key.RevokedAt is not null)
                {
                    throw new AtelierException(ErrorCatalog.b_session_tokennotvalid, errCode: ErrCodes.KeyRevoked, errMessage: $"the key {key.Id} was revoked");
                }

                var caller = new Caller(platform ? CallerKind.PlatformAdmin : CallerKind.Worker, key.Id, null, null, []) { AgentId = key.AgentId };
                if (platform)
                {
                    cache.PutKey(cacheKey, caller);
                }

                var now = clock.GetUtcNow().UtcDateTime;
                if (key.LastUsedAt is null || key.LastUsedAt < now.AddMinutes(-1))
                {
                    // Once a minute at most, so reads stay reads.
                    await db.PlatformKeys.Where(k => k.Id == key.Id).ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), ct);
                }

                return caller;
            }
        }

        throw new AtelierException(ErrorCatalog.p_token_invalidapitoken);
    }

    private async Task<Caller> AuthenticateTokenAsync(string secret, CancellationToken ct)
    {
        var hash = Secrets.Hash(secret);
        var cacheKey = Convert.ToHexString(hash);
        var now = clock.GetUtcNow().UtcDateTime;
        if (!cache.TryGetToken(cacheKey, out var entry))
        {
            var row = await HotQueries.TokenByHash(db, hash, ct);
            if (row is null || !Secrets.HashEquals(row.SecretHash, hash))
            {
                throw new AtelierException(ErrorCatalog.p_token_invalidapitoken);
            }

            if (row.Disabled || row.RevokedAt is not null)
            {
                throw new AtelierException(ErrorCatalog.b_session_tokennotvalid, errCode: row.RevokedAt is null ? ErrCodes.TokenDisabled : ErrCodes.TokenRevoked);
            }

            entry = new CachedToken(row.Id, row.TenantId, row.AppId, TokenService.ScopesOf(row.Scopes), row.ExpiresAt);
            cache.PutToken(cacheKey, entry);
            if (row.LastUsedAt is null || row.LastUsedAt < now.AddMinutes(-1))
            {
                // Once a minute at most, so reads stay reads.
                await db.ApiTokens.IgnoreQueryFilters().Where(t => t.Id == row.Id)
                    .ExecuteUpdateAsync(s => s.SetProperty(t => t.LastUsedAt, now), ct);
            }
        }

        if (entry.ExpiresAt is { } exp && exp <= now)
        {
            throw new AtelierException(ErrorCatalog.b_session_tokennotvalid, errCode: ErrCodes.TokenExpired);
        }

        return new Caller(CallerKind.Token, entry.TokenId, entry.TenantId, entry.AppId, entry.Scopes);
    }

    /// <summary>Resolves the request's tenant (see <see cref="ResolveTenantAsync"/>) and scopes the request's database reads to it.</summary>
    public async Task<string> EnterTenantAsync(RequestContext ctx, Caller caller, string? named, bool namedPresent, CancellationToken ct)
    {
        var tenantId = await ResolveTenantAsync(caller, named, namedPresent, ct);
        ctx.TenantId = tenantId;
        db.TenantScope = tenantId;
        return tenantId;
    }

    /// <summary>
    /// Enters the tenant of an anonymous request that a public route resolved (an anonymous HTTP trigger): the tenant
    /// must be active, as for any credential of it.
    /// </summary>
    public async Task EnterTenantAnonymouslyAsync(RequestContext ctx, string tenantId, CancellationToken ct)
    {
        var state = await TenantStateAsync(tenantId, ct);
        if (state != TenantState.Active)
        {
            throw new AtelierException(ErrorCatalog.b_user_tenantnotactive, errCode: ErrCodes.TenantState, errMessage: state.ToString().ToLowerInvariant());
        }

        ctx.TenantId = tenantId;
        db.TenantScope = tenantId;
    }

    /// <summary>
    /// A tenant admin token names a person of its tenant: once the tenant has registered operators, the operator must be
    /// one of them (the first may be registered by anyone the token's holder names). <paramref name="header"/> names
    /// where the operator came from, for the message.
    /// </summary>
    public async Task CheckRegisteredOperatorAsync(string operatorId, string header, CancellationToken ct)
    {
        if (!await db.Operators.AnyAsync(o => o.Id == operatorId, ct) && await db.Operators.AnyAsync(ct))
        {
            throw new AtelierException(ErrorCatalog.b_operator_invalidoperatoridnul, status: 403, errCode: ErrCodes.OperatorNotRegistered,
                errMessage: $"{header} {operatorId} is not a registered operator of the tenant (GET /api/v1/operators)");
        }
    }

    /// <summary>
    /// The tenant a tenant-scoped request acts in. A platform admin names it (header <c>X-Tenant-Id</c> or query
    /// <c>tenantId</c>); a token carries its own and may not name another. Token callers need an active tenant.
    /// </summary>
    public async Task<string> ResolveTenantAsync(Caller caller, string? named, bool namedPresent, CancellationToken ct)
    {
        if (namedPresent && string.IsNullOrWhiteSpace(named))
        {
            throw new AtelierException(ErrorCatalog.b_tenant_invalidtenantidnul);
        }

        string tenantId;
        if (caller.IsPlatformAdmin)
        {
            tenantId = namedPresent ? named!.Trim() : throw new AtelierException(ErrorCatalog.p_common_tenantidrequired);
        }
        else
        {
            // A token or a session carries its own tenant.
            tenantId = caller.TenantId!;
            if (namedPresent && named!.Trim() != tenantId)
            {
                throw new AtelierException(ErrorCatalog.p_token_invalidtenantid);
            }
        }

        var state = await TenantStateAsync(tenantId, ct);
        if (!caller.IsPlatformAdmin && state != TenantState.Active)
        {
            throw new AtelierException(ErrorCatalog.b_user_tenantnotactive, errCode: ErrCodes.TenantState, errMessage: state.ToString().ToLowerInvariant());
        }

        return tenantId;
    }

    private async Task<TenantState> TenantStateAsync(string tenantId, CancellationToken ct)
    {
        if (cache.TryGetTenantState(tenantId, out var cached))
        {
            return cached;
        }

        var state = await HotQueries.TenantStateById(db, tenantId, ct)
                    ?? throw new AtelierException(ErrorCatalog.b_user_tenantnotfound, errCode: ErrCodes.TenantNotFound, errMessage: tenantId);
        cache.PutTenantState(tenantId, state);
        return state;
    }
}
