using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Identity;
using Atelier.Contracts.Sessions;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Sessions;

/// <summary>
/// Sessions of end users: opened with an API token, checked by credential, refreshed, ended. Ending adds the
/// session's seconds to its token's total exactly once, in the same transaction as the state change.
/// </summary>
public sealed class SessionService(AtelierDb db, RequestContext ctx, TimeProvider clock, IOptions<SessionsOptions> options)
{
    private const string Active = "active";
    private const string Ended = "ended";
    private const int MaxAttempts = 50;

    private DateTime Now => clock.GetUtcNow().UtcDateTime;
    private string TenantId => ctx.TenantId ?? throw new InvalidOperationException("No tenant in scope.");

    public async Task<CreatedSessionDto> CreateAsync(CreateSessionRequest req, string requestBaseUrl, CancellationToken ct)
    {
        var caller = TokenCaller();
        var endUserId = Validate.Name(req.EndUserId, "endUserId", 128);
        var mode = req.Mode is null ? SessionMode.Interactive : Validate.EnumOrNull<SessionMode>(req.Mode, "mode")!.Value;
        var config = await db.TenantConfigs.AsNoTracking().FirstOrDefaultAsync(ct)
                     ?? throw new AtelierException(ErrorCatalog.b_user_tenantconfignotfound);
        var roleRef = req.Role ?? config.DefaultRole ?? "";
        var role = await db.Roles.AsNoTracking().FirstOrDefaultAsync(r => r.Id == roleRef || r.Name == roleRef, ct)
                   ?? throw AtelierException.With(ErrorCatalog.b_session_roleidnotvalid, "Role", roleRef);
        if (req.ResourceConfigId is not null && !await db.ResourceConfigs.AnyAsync(r => r.Id == req.ResourceConfigId, ct))
        {
            throw new AtelierException(ErrorCatalog.b_session_resourceconfigidnotvalid, errCode: ErrCodes.ResourceConfigNotFound, errMessage: req.ResourceConfigId);
        }

        var now = Now;
        var expiredAt = req.ExpiredAt?.ToUniversalTime() ?? now.AddSeconds(config.DefaultSessionSeconds);
        CheckExpiry(expiredAt, now, now);

        var token = await db.ApiTokens.AsNoTracking().FirstAsync(t => t.Id == caller.CredentialId, ct);
        if (token.SessionSecondsCap is { } cap && token.TotalEndedSessionSeconds >= cap)
        {
            throw new AtelierException(ErrorCatalog.b_agent_jobpreinvokefail, errCode: ErrCodes.SessionSecondsCap,
                errMessage: $"the token's ended sessions total {token.TotalEndedSessionSeconds} s, its cap is {cap} s");
        }

        var credential = Secrets.Issue(Secrets.SessionPrefix);
        var session = new Session
        {
            Id = Ids.New("ses", clock), TenantId = TenantId, AppId = caller.AppId!, TokenId = caller.CredentialId,
            EndUserId = endUserId, RoleId = role.Id, Mode = ModeName(mode), ResourceConfigId = req.ResourceConfigId,
            CredentialHash = Secrets.Hash(credential), CredentialPrefix = Secrets.DisplayPrefix(credential),
            State = Active, CreatedAt = now, ExpiredAt = expiredAt,
        };
        db.Sessions.Add(session);
        await db.SaveChangesAsync(ct);
        var baseUrl = (options.Value.StudioBaseUrl ?? requestBaseUrl).TrimEnd('/');
        // The credential rides in the fragment, which browsers never send to a server or write to its logs.
        return new CreatedSessionDto(ToDto(session, role.Name), credential, $"{baseUrl}/studio/{session.Id}#credential={credential}");
    }

    public async Task<SessionDto> GetAsync(string id, CancellationToken ct)
    {
        var row = await FindVisibleAsync(id, ct);
        return ToDto(row, await RoleNameAsync(row.RoleId, ct));
    }

    public async Task<Page<SessionDto>> ListAsync(string? appId, string? tokenId, string? state, PageRequest page, CancellationToken ct)
    {
        var q = db.Sessions.AsNoTracking();
        var caller = ctx.Caller!;
        if (!caller.Has(TokenScope.Admin))
        {
            tokenId = caller.CredentialId; // an app token sees its own sessions only
        }

        if (appId is not null)
        {
            q = q.Where(s => s.AppId == appId);
        }

        if (tokenId is not null)
        {
            q = q.Where(s => s.TokenId == tokenId);
        }

        if (Validate.EnumOrNull<SessionState>(state, "state") is { } st)
        {
            var name = st == SessionState.Active ? Active : Ended;
            q = q.Where(s => s.State == name);
        }

        var roles = await db.Roles.AsNoTracking().ToDictionaryAsync(r => r.Id, r => r.Name, ct);
        return await q.OrderByDescending(s => s.CreatedAt).ThenByDescending(s => s.Id)
            .ToPageAsync(page, s => ToDto(s, roles.GetValueOrDefault(s.RoleId, "")), ct);
    }

    /// <summary>
    /// Moves <c>expiredAt</c> of one of the calling token's sessions. A session of another token (or none) is
    /// <c>p_session_refreshfailedsessionnotfound</c>; an ended or already expired one <c>b_session_sessionexpired</c>.
    /// </summary>
    public async Task<SessionDto> RefreshAsync(string id, RefreshSessionRequest req, CancellationToken ct)
    {
        var caller = TokenCaller();
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var now = Now;
            var row = await db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct);
            if (row is null || row.TokenId != caller.CredentialId)
            {
                throw new AtelierException(ErrorCatalog.p_session_refreshfailedsessionnotfound, errCode: ErrCodes.SessionNotOfToken, errMessage: id);
            }

            ThrowIfOver(row, now);
            var config = await db.TenantConfigs.AsNoTracking().FirstAsync(ct);
            var expiredAt = req.ExpiredAt?.ToUniversalTime() ?? now.AddSeconds(config.DefaultSessionSeconds);
            CheckExpiry(expiredAt, now, row.CreatedAt);
            var changed = await db.Sessions.Where(s => s.Id == id && s.Version == row.Version && s.State == Active)
                .ExecuteUpdateAsync(u => u.SetProperty(s => s.ExpiredAt, expiredAt).SetProperty(s => s.Version, row.Version + 1), ct);
            if (changed == 1)
            {
                row.ExpiredAt = expiredAt;
                row.Version++;
                return ToDto(row, await RoleNameAsync(row.RoleId, ct));
            }
        }

        throw new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.SessionContended) { RetryAfterSeconds = 1 };
    }

    /// <summary>Ends a session now (an app token its own sessions, a tenant admin any). Ending twice is not an error: the first end stands.</summary>
    public async Task<SessionDto> EndAsync(string id, CancellationToken ct)
    {
        var row = await FindVisibleAsync(id, ct);
        var ended = await EndCoreAsync(db, row.Id, clock, dueOnly: false, ct) ?? row;
        return ToDto(ended, await RoleNameAsync(row.RoleId, ct));
    }

    /// <summary>
    /// The session-check of the studio and the workers: validates a credential for a surface. An unknown mode, or
    /// one the session was not opened for, is <c>b_session_sessionmodenotsupport</c>.
    /// </summary>
    public async Task<SessionCheckDto> CheckAsync(CheckSessionRequest req, CancellationToken ct)
    {
        var mode = req.Mode ?? "interactive";
        if (!Enum.TryParse<SessionMode>(mode, ignoreCase: true, out var asked) || char.IsAsciiDigit(mode[0]))
        {
            throw new AtelierException(ErrorCatalog.b_session_sessionmodenotsupport, errCode: ErrCodes.UnknownMode,
                errMessage: $"mode '{mode}' is not served; served: interactive, api");
        }

        var row = await ResolveCredentialAsync(db, req.Credential, clock.GetUtcNow().UtcDateTime, ct);
        // Bearer session credentials get the tenant check from the access filter; this route has none, so it checks here.
        if (await HotQueries.TenantStateById(db, row.TenantId, ct) != TenantState.Active)
        {
            throw new AtelierException(ErrorCatalog.b_user_tenantnotactive, errCode: ErrCodes.TenantState);
        }

        if (row.Mode != ModeName(asked))
        {
            throw new AtelierException(ErrorCatalog.b_session_sessionmodenotsupport, errCode: ErrCodes.ModeMismatch,
                errMessage: $"the session is for {row.Mode}, the check asked for {ModeName(asked)}");
        }

        db.TenantScope = row.TenantId;
        return ToCheck(row, await RoleNameAsync(row.RoleId, ct));
    }

    /// <summary>The session of the calling session credential.</summary>
    public async Task<SessionCheckDto> CurrentAsync(CancellationToken ct)
    {
        var row = await db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == ctx.Caller!.CredentialId, ct)
                  ?? throw new AtelierException(ErrorCatalog.p_session_sessionnotfound, status: 401);
        var dedicated = row.ResourceConfigId is { } rc
                        && await db.ResourceConfigs.AsNoTracking().AnyAsync(r => r.Id == rc && r.FunctionTemplateId != null, ct);
        return ToCheck(row, await RoleNameAsync(row.RoleId, ct)) with { ResourceConfigId = row.ResourceConfigId, Dedicated = dedicated };
    }

    /// <summary>
    /// Finds the live session of a credential: junk or unknown is <c>p_session_sessionnotfound</c> (401); a session whose
    /// token is revoked, disabled, expired or gone (its app deleted) is <c>b_session_tokennotvalid</c> (401); ended or
    /// past its expiry <c>b_session_sessionexpired</c>, whether or not the sweeper has run.
    /// </summary>
    public static async Task<Session> ResolveCredentialAsync(AtelierDb db, string? credential, DateTime now, CancellationToken ct)
    {
        if (!Secrets.IsWellFormed(credential, Secrets.SessionPrefix))
        {
            throw new AtelierException(ErrorCatalog.p_session_sessionnotfound, status: 401, errCode: ErrCodes.CredentialMalformed);
        }

        var hash = Secrets.Hash(credential!);
        var found = await HotQueries.SessionByCredential(db, hash, ct);
        if (found is null || !Secrets.HashEquals(found.Session.CredentialHash, hash))
        {
            throw new AtelierException(ErrorCatalog.p_session_sessionnotfound, status: 401, errCode: ErrCodes.CredentialUnknown);
        }

        // Read with the session on every request (never cached), so a session dies with its token on every replica at once.
        var token = found.Token;
        var dead = token is null ? ErrCodes.TokenMissing
            : token.RevokedAt is not null ? ErrCodes.TokenRevoked
            : token.Disabled ? ErrCodes.TokenDisabled
            : token.ExpiresAt <= now ? ErrCodes.TokenExpired
            : null;
        if (dead is not null)
        {
            throw new AtelierException(ErrorCatalog.b_session_tokennotvalid, errCode: dead, errMessage: $"the token of session {found.Session.Id} is no longer valid");
        }

        ThrowIfOver(found.Session, now);
        return found.Session;
    }

    /// <summary>
    /// Ends every active session of a token (revoked or disabled) or of an app (deleted) now, each counted on its token
    /// like any end, with <paramref name="reason"/> as its end reason.
    /// </summary>
    public static async Task EndAllAsync(AtelierDb db, string tenantId, string? tokenId, string? appId, string reason, TimeProvider clock, CancellationToken ct)
    {
        var q = db.Sessions.IgnoreQueryFilters().AsNoTracking().Where(s => s.TenantId == tenantId && s.State == Active);
        q = tokenId is null ? q : q.Where(s => s.TokenId == tokenId);
        q = appId is null ? q : q.Where(s => s.AppId == appId);
        foreach (var id in await q.OrderBy(s => s.CreatedAt).Select(s => s.Id).ToListAsync(ct))
        {
            try
            {
                await EndCoreAsync(db, id, clock, dueOnly: false, ct, reason);
            }
            catch (AtelierException)
            {
                // One that cannot be ended now does not keep the others alive; its credential is refused already (its
                // token is not valid), and the sweeper ends it at its expiry, or marks and reports it.
            }
        }
    }

    /// <summary>
    /// Ends one session and adds its seconds to its token's total, both in one transaction, at most once: the state
    /// change is conditional on the version read, so racing ends (explicit, sweeper, refresh) settle on one winner.
    /// With <paramref name="dueOnly"/> (the sweeper) a session refreshed meanwhile is left alone. A session whose token
    /// row is gone (its app was deleted before the session was ended) still ends: its seconds stay on the session and
    /// are counted on no token. Returns the ended row, or null when nothing was ended now.
    /// </summary>
    /// <param name="reason">The end reason of a session ended before its expiry (<c>ended</c> when not given); one ended
    /// past its expiry is <c>expired</c>.</param>
    public static async Task<Session?> EndCoreAsync(AtelierDb db, string sessionId, TimeProvider clock, bool dueOnly, CancellationToken ct, string? reason = null)
    {
        for (var attempt = 0; attempt < MaxAttempts; attempt++)
        {
            var now = clock.GetUtcNow().UtcDateTime;
            var row = await db.Sessions.IgnoreQueryFilters().AsNoTracking().FirstOrDefaultAsync(s => s.Id == sessionId, ct);
            if (row is null || row.State == Ended || (dueOnly && row.ExpiredAt > now))
            {
                return row is { State: Ended } && !dueOnly ? row : null;
            }

            var end = now < row.ExpiredAt ? now : row.ExpiredAt;
            var why = now < row.ExpiredAt ? reason ?? "ended" : "expired";
            var seconds = Math.Max(0L, (long)Math.Floor((end - row.CreatedAt).TotalSeconds));
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var changed = await db.Sessions.IgnoreQueryFilters()
                .Where(s => s.Id == sessionId && s.Version == row.Version && s.State == Active)
                .ExecuteUpdateAsync(u => u
                    .SetProperty(s => s.State, Ended).SetProperty(s => s.EndedAt, end).SetProperty(s => s.EndReason, why)
                    .SetProperty(s => s.DurationSeconds, seconds).SetProperty(s => s.EndError, (string?)null)
                    .SetProperty(s => s.Version, row.Version + 1), ct);
            if (changed != 1)
            {
                await tx.RollbackAsync(ct);
                continue; // someone else changed it first: read again
            }

            try
            {
                // No row updated: the token is gone, and the seconds are counted on no token (the session keeps them).
                await db.ApiTokens.IgnoreQueryFilters()
                    .Where(t => t.Id == row.TokenId && t.TenantId == row.TenantId)
                    .ExecuteUpdateAsync(u => u.SetProperty(t => t.TotalEndedSessionSeconds, t => t.TotalEndedSessionSeconds + seconds), ct);
            }
            catch (Exception e) when (DbErrors.IsDatabaseFailure(e))
            {
                // The transaction is rolled back when it is disposed: the session stays active.
                var (code, message) = DbErrors.Describe(e);
                throw new AtelierException(ErrorCatalog.b_user_totalendedsessiontimesecsplusfailed, errCode: code,
                    errMessage: $"adding session {row.Id}'s seconds to token {row.TokenId} failed ({message}); the session stays active", inner: e);
            }

            await tx.CommitAsync(ct);
            row.State = Ended;
            row.EndedAt = end;
            row.EndReason = why;
            row.DurationSeconds = seconds;
            row.EndError = null;
            row.Version++;
            return row;
        }

        throw new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.SessionContended) { RetryAfterSeconds = 1 };
    }

    private static void ThrowIfOver(Session row, DateTime now)
    {
        if (row.State == Ended)
        {
            throw new AtelierException(ErrorCatalog.b_session_sessionexpired, errCode: ErrCodes.SessionEnded, errMessage: row.Id);
        }

        if (row.ExpiredAt <= now)
        {
            throw new AtelierException(ErrorCatalog.b_session_sessionexpired, errCode: ErrCodes.SessionExpired, errMessage: row.Id);
        }
    }

    private void CheckExpiry(DateTime expiredAt, DateTime now, DateTime createdAt)
    {
        if (expiredAt <= now)
        {
            throw new AtelierException(ErrorCatalog.p_session_expiredattooearly, errCode: ErrCodes.ExpiredAt,
                errMessage: $"expiredAt {expiredAt:O} is not after now {now:O}");
        }

        if ((expiredAt - createdAt).TotalSeconds > options.Value.MaxSessionSeconds)
        {
            throw AtelierException.InvalidInput("expiredAt", $"a session lasts at most {options.Value.MaxSessionSeconds} seconds from its creation");
        }
    }

    private Caller TokenCaller()
    {
        var caller = ctx.Caller!;
        return caller.Kind == CallerKind.Token
            ? caller
            : throw new AtelierException(ErrorCatalog.b_session_tokenforbidden, errCode: ErrCodes.NotAToken, errMessage: "sessions are opened and refreshed with an API token");
    }

    /// <summary>A session the caller may see: any of the tenant for an admin, its own token's for an app token.</summary>
    private async Task<Session> FindVisibleAsync(string id, CancellationToken ct)
    {
        var row = await db.Sessions.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct);
        var caller = ctx.Caller!;
        if (row is null || (!caller.Has(TokenScope.Admin) && row.TokenId != caller.CredentialId))
        {
            throw new AtelierException(ErrorCatalog.p_session_sessionnotfound, errCode: ErrCodes.SessionNotFound, errMessage: id);
        }

        return row;
    }

    private async Task<string> RoleNameAsync(string roleId, CancellationToken ct) =>
        await db.Roles.AsNoTracking().Where(r => r.Id == roleId).Select(r => r.Name).FirstOrDefaultAsync(ct) ?? "";

    private static string ModeName(SessionMode mode) => mode == SessionMode.Api ? "api" : "interactive";

    private SessionCheckDto ToCheck(Session s, string roleName) =>
        new(s.Id, s.TenantId, s.AppId, s.RoleId, roleName, s.Mode == "api" ? SessionMode.Api : SessionMode.Interactive, s.ExpiredAt,
            Math.Max(0, (long)(s.ExpiredAt - Now).TotalSeconds));

    internal static SessionDto ToDto(Session s, string roleName) =>
        new(s.Id, s.AppId, s.TokenId, s.EndUserId, s.RoleId, roleName, s.Mode == "api" ? SessionMode.Api : SessionMode.Interactive,
            s.ResourceConfigId, s.State == Ended ? SessionState.Ended : SessionState.Active, s.CreatedAt, s.ExpiredAt, s.EndedAt,
            s.EndReason, s.DurationSeconds, s.CredentialPrefix, s.EndError);
}
