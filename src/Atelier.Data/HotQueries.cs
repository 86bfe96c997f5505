using Atelier.Contracts.Identity;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Data;

/// <summary>
/// Precompiled queries for the reads on every request's path. A compiled query skips EF's per-call expression
/// work, which measured 5-6 times the cost of the query itself on SQLite (see docs/benchmarks.md). Tenant
/// query filters still apply to the compiled ones; <see cref="AppById"/> is raw SQL and writes its tenant filter out.
/// </summary>
public static class HotQueries
{
    /// <summary>
    /// An app of the tenant in scope, read without EF's query pipeline (the read behind <c>GET /api/v1/apps/{id}</c>,
    /// the API bench's authenticated read): the tenant filter is written out, as the model's query filter has it.
    /// </summary>
    public static async Task<App?> AppById(AtelierDb db, string id, CancellationToken ct)
    {
        var rows = await RawCommands.ReadAsync(db,
            "SELECT \"Id\", \"TenantId\", \"Name\", \"Description\", \"CreatedAt\", \"UpdatedAt\" FROM apps WHERE \"Id\" = {0} AND \"TenantId\" = {1}",
            [id, db.TenantScope], r => new App
            {
                Id = r.GetString(0), TenantId = r.GetString(1), Name = r.GetString(2), Description = r.IsDBNull(3) ? null : r.GetString(3),
                CreatedAt = Utc(r.GetDateTime(4)), UpdatedAt = Utc(r.GetDateTime(5)),
            }, ct);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>A timestamp as the model's converter reads it: stored in UTC, answered with its kind set.</summary>
    private static DateTime Utc(DateTime v) => DateTime.SpecifyKind(v, DateTimeKind.Utc);

    public static readonly Func<AtelierDb, byte[], CancellationToken, Task<ApiToken?>> TokenByHash =
        EF.CompileAsyncQuery((AtelierDb db, byte[] hash, CancellationToken ct) =>
            db.ApiTokens.IgnoreQueryFilters().AsNoTracking().FirstOrDefault(t => t.SecretHash == hash));

    /// <summary>
    /// A platform or worker key by its secret's hash: raw, as a worker's every call reads it (worker keys are not cached,
    /// so a revoked one is refused at once on every replica).
    /// </summary>
    public static async Task<PlatformKey?> PlatformKeyByHash(AtelierDb db, byte[] hash, CancellationToken ct)
    {
        var rows = await RawCommands.ReadAsync(db,
            """
            SELECT "Id", "Scope", "SecretHash", "DisplayPrefix", "CreatedAt", "RevokedAt", "Name", "LastUsedAt", "TenantId", "AgentId", "UnitId"
            FROM platform_keys WHERE "SecretHash" = {0}
            """,
            [hash], r => new PlatformKey
            {
                Id = r.GetString(0), Scope = r.GetString(1), SecretHash = (byte[])r.GetValue(2), DisplayPrefix = r.GetString(3), CreatedAt = Utc(r.GetDateTime(4)),
                RevokedAt = r.IsDBNull(5) ? null : Utc(r.GetDateTime(5)), Name = r.IsDBNull(6) ? null : r.GetString(6),
                LastUsedAt = r.IsDBNull(7) ? null : Utc(r.GetDateTime(7)), TenantId = r.IsDBNull(8) ? null : r.GetString(8),
                AgentId = r.IsDBNull(9) ? null : r.GetString(9), UnitId = r.IsDBNull(10) ? null : r.GetString(10),
            }, ct);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>A session by its credential's hash, with the token it was opened with (null when that row is gone).</summary>
    public static readonly Func<AtelierDb, byte[], CancellationToken, Task<SessionWithToken?>> SessionByCredential =
        EF.CompileAsyncQuery((AtelierDb db, byte[] hash, CancellationToken ct) =>
            (from s in db.Sessions.IgnoreQueryFilters().AsNoTracking()
             where s.CredentialHash == hash
             join t in db.ApiTokens.IgnoreQueryFilters().AsNoTracking() on new { Id = s.TokenId, s.TenantId } equals new { t.Id, t.TenantId } into tokens
             from t in tokens.DefaultIfEmpty()
             select new SessionWithToken(s, t)).FirstOrDefault());

    /// <summary>
    /// A job by id, in any tenant, every column (the worker's completion reads it first; the webhook relay for a
    /// message's body): raw, a kept prepared statement on SQLite, as EF's compiled query of the whole row cost a
    /// quarter of a millisecond on every completion. The columns are the entity's, in its order.
    /// </summary>
    public static async Task<Job?> JobById(AtelierDb db, string id, CancellationToken ct)
    {
        var rows = await RawCommands.ReadAsync(db, JobColumns + """FROM jobs WHERE "Id" = {0}""", [id], ReadJob, ct);
        return rows.Count == 0 ? null : rows[0];
    }

    /// <summary>
    /// Jobs by id, in any tenant, every column, in one read (the webhook relay's bodies for a take). The list of ids is
    /// padded to a power of two (repeating the last), so that a handful of statement texts serve every count and stay prepared.
    /// </summary>
    public static async Task<List<Job>> JobsByIds(AtelierDb db, IReadOnlyList<string> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        var width = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)ids.Count);
        var padded = new object?[width];
        for (var i = 0; i < width; i++)
        {
            padded[i] = ids[Math.Min(i, ids.Count - 1)];
        }

        var list = string.Join(", ", Enumerable.Range(0, width).Select(i => "{" + i.ToString(System.Globalization.CultureInfo.InvariantCulture) + "}"));
        return await RawCommands.ReadAsync(db, JobColumns + $"""FROM jobs WHERE "Id" IN ({list})""", padded, ReadJob, ct);
    }

    private const string JobColumns = """
        SELECT "Id", "TenantId", "AgentId", "ClientJobId", "ClientScope", "BodyHash", "RequestJson", "ModelKey", "ModelJson", "State",
               "Priority", "Attempt", "MaxAttempts", "LeaseOwner", "LeaseKeyId", "LeaseUntil", "CreatedAt", "StartedAt", "FinishedAt",
               "ErrorCode", "ErrorMessage", "ResultJson", "CancelRequested", "CancelRequestedAt", "Kind", "CallerId", "AppId", "FairKey",
               "ProgressStep", "ProgressSteps", "Progress", "PreviewStep", "ResultExpiresAt", "WebhookUrl", "CreditsCharged", "CreditScopes",
               "WebhookEvents"

        """;

    private static Job ReadJob(System.Data.Common.DbDataReader r) => new()
    {
        Id = r.GetString(0), TenantId = r.GetString(1), AgentId = r.GetString(2), ClientJobId = Text(r, 3), ClientScope = r.GetString(4),
        BodyHash = r.GetString(5), RequestJson = r.GetString(6), ModelKey = Text(r, 7), ModelJson = Text(r, 8), State = r.GetString(9),
        Priority = r.GetInt32(10), Attempt = r.GetInt32(11), MaxAttempts = r.GetInt32(12), LeaseOwner = Text(r, 13), LeaseKeyId = Text(r, 14),
        LeaseUntil = At(r, 15), CreatedAt = Utc(r.GetDateTime(16)), StartedAt = At(r, 17), FinishedAt = At(r, 18),
        ErrorCode = Text(r, 19), ErrorMessage = Text(r, 20), ResultJson = Text(r, 21), CancelRequested = r.GetBoolean(22), CancelRequestedAt = At(r, 23),
        Kind = r.GetString(24), CallerId = Text(r, 25), AppId = Text(r, 26), FairKey = r.GetInt64(27),
        ProgressStep = r.GetInt32(28), ProgressSteps = r.GetInt32(29), Progress = r.GetDouble(30), PreviewStep = r.IsDBNull(31) ? null : r.GetInt32(31),
        ResultExpiresAt = At(r, 32), WebhookUrl = Text(r, 33), CreditsCharged = r.GetInt32(34), CreditScopes = Text(r, 35), WebhookEvents = Text(r, 36),
    };

    private static string? Text(System.Data.Common.DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static DateTime? At(System.Data.Common.DbDataReader r, int i) => r.IsDBNull(i) ? null : Utc(r.GetDateTime(i));

    public static readonly Func<AtelierDb, string, CancellationToken, Task<TenantState?>> TenantStateById =
        EF.CompileAsyncQuery((AtelierDb db, string id, CancellationToken ct) =>
            db.Tenants.Where(t => t.Id == id).Select(t => (TenantState?)t.State).FirstOrDefault());
}

/// <summary>A session and its token (null when the token row no longer exists).</summary>
public sealed record SessionWithToken(Session Session, ApiToken? Token);

