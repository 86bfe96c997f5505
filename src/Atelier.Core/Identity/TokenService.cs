using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Identity;

/// <summary>API tokens of an app: issued once with their secret, then only listed, disabled, enabled or revoked.</summary>
public sealed class TokenService(AtelierDb db, RequestContext ctx, TimeProvider clock, AuthCache cache, IdentityService identity)
{
    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<IssuedTokenDto> IssueAsync(string appId, IssueTokenRequest req, CancellationToken ct)
    {
        var app = await identity.FindAppAsync(appId, false, ct);
        var name = Validate.Name(req.Name ?? "token", "name");
        var scopes = req.Scopes is null || req.Scopes.Count == 0 ? [TokenScope.App] : req.Scopes.Distinct().ToList();
        if (req.ExpiresAt is { } exp && exp.ToUniversalTime() <= Now)
        {
            throw AtelierException.InvalidInput("expiresAt", "must be in the future");
        }

        var secret = Secrets.Issue(Secrets.TokenPrefix);
        var token = new ApiToken
        {
            Id = Ids.New("tok", clock), TenantId = TenantId, AppId = app.Id, Name = name,
            SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            Scopes = scopes.Aggregate(TokenScopes.None, (acc, s) => acc | ToFlag(s)),
            CreatedAt = Now, ExpiresAt = req.ExpiresAt?.ToUniversalTime(),
            SessionSecondsCap = CheckCap(req.SessionSecondsCap),
            AgentId = await AgentRefs.IdAsync(db, req.AgentId, ct),
        };
        db.ApiTokens.Add(token);
        Audit.Record(db, ctx, clock, "token.issue", "token", token.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return new IssuedTokenDto(ToDto(token), secret);
    }

    public async Task<Page<TokenDto>> ListAsync(string appId, PageRequest page, CancellationToken ct)
    {
        await identity.FindAppAsync(appId, false, ct);
        return await db.ApiTokens.AsNoTracking().Where(t => t.AppId == appId)
            .OrderBy(t => t.CreatedAt).ThenBy(t => t.Id).ToPageAsync(page, ToDto, ct);
    }

    public async Task<TokenDto> GetAsync(string tokenId, CancellationToken ct) => ToDto(await FindAsync(tokenId, false, ct));

    public async Task<TokenDto> SetDisabledAsync(string tokenId, bool disabled, CancellationToken ct)
    {
        var token = await FindAsync(tokenId, true, ct);
        token.Disabled = disabled;
        Audit.Record(db, ctx, clock, disabled ? "token.disable" : "token.enable", "token", token.Id, TenantId);
        await db.SaveChangesAsync(ct);
        cache.EvictToken(token.Id);
        if (disabled)
        {
            // Its sessions end with it (enabling it again does not bring them back).
            await Sessions.SessionService.EndAllAsync(db, TenantId, token.Id, null, ErrCodes.TokenDisabled, clock, ct);
        }

        return await ReadAsync(token.Id, ct);
    }

    public async Task<TokenDto> UpdateAsync(string tokenId, UpdateTokenRequest req, CancellationToken ct)
    {
        var token = await FindAsync(tokenId, true, ct);
        token.SessionSecondsCap = CheckCap(req.SessionSecondsCap);
        Audit.Record(db, ctx, clock, "token.update", "token", token.Id, TenantId);
        await db.SaveChangesAsync(ct);
        return ToDto(token);
    }

    /// <summary>The calling token itself (any scope): its accumulated session time among the rest.</summary>
    public async Task<TokenDto> CurrentAsync(CancellationToken ct)
    {
        var caller = ctx.Caller ?? throw new InvalidOperationException("No caller.");
        if (caller.Kind != CallerKind.Token)
        {
            throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.NotAToken, errMessage: "only an API token has a current token");
        }

        return ToDto(await FindAsync(caller.CredentialId, false, ct));
    }

    private static long? CheckCap(long? cap) =>
        cap is null or (>= 0 and <= 100L * 365 * 86400) ? cap : throw AtelierException.InvalidInput("sessionSecondsCap", "must be between 0 and 3153600000");

    /// <summary>
    /// Revokes for good: the row stays for the audit trail, the secret never works again, and its active sessions end
    /// now (their seconds counted on it).
    /// </summary>
    public async Task<TokenDto> RevokeAsync(string tokenId, CancellationToken ct)
    {
        var token = await FindAsync(tokenId, true, ct);
        token.RevokedAt ??= Now;
        Audit.Record(db, ctx, clock, "token.revoke", "token", token.Id, TenantId);
        await db.SaveChangesAsync(ct);
        cache.EvictToken(token.Id);
        await Sessions.SessionService.EndAllAsync(db, TenantId, token.Id, null, ErrCodes.TokenRevoked, clock, ct);
        return await ReadAsync(token.Id, ct);
    }

    /// <summary>The token as it stands now (its session total changed under the tracked row when sessions were ended).</summary>
    private async Task<TokenDto> ReadAsync(string tokenId, CancellationToken ct) => ToDto(await FindAsync(tokenId, false, ct));

    private async Task<ApiToken> FindAsync(string tokenId, bool tracking, CancellationToken ct)
    {
        var q = tracking ? db.ApiTokens : db.ApiTokens.AsNoTracking();
        return await q.FirstOrDefaultAsync(t => t.Id == tokenId, ct)
               ?? throw new AtelierException(ErrorCatalog.p_token_invalidapitoken, status: 404, errCode: ErrCodes.TokenNotFound, errMessage: tokenId);
    }

    internal static IReadOnlyList<TokenScope> ScopesOf(TokenScopes flags)
    {
        var list = new List<TokenScope>(2);
        if (flags.HasFlag(TokenScopes.Admin))
        {
            list.Add(TokenScope.Admin);
        }

        if (flags.HasFlag(TokenScopes.App))
        {
            list.Add(TokenScope.App);
        }

        return list;
    }

    private static TokenScopes ToFlag(TokenScope s) => s switch
    {
        TokenScope.Admin => TokenScopes.Admin,
        TokenScope.App => TokenScopes.App,
        _ => throw AtelierException.InvalidInput("scopes", $"unknown scope {s}"),
    };

    private static TokenDto ToDto(ApiToken t) =>
        new(t.Id, t.AppId, t.Name, ScopesOf(t.Scopes), t.DisplayPrefix, t.CreatedAt, t.ExpiresAt, t.Disabled, t.RevokedAt, t.LastUsedAt,
            t.TotalEndedSessionSeconds, t.SessionSecondsCap, t.AgentId);
}
