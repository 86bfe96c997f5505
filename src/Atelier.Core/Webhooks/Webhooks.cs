using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Webhooks;

/// <summary>Configuration section <c>Atelier:Webhooks</c>.</summary>
public sealed class WebhookOptions
{
    public const string Section = "Atelier:Webhooks";

    /// <summary>
    /// When each attempt is made, in seconds after the previous one (the first is immediate): Standard Webhooks'
    /// schedule, 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h (about 75 h in all). Its length is the number of attempts.
    /// </summary>
    public double[]? RetryScheduleSeconds { get; set; }

    public static readonly double[] DefaultSchedule = [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400];

    /// <summary>The schedule in force: <see cref="RetryScheduleSeconds"/> when set (a configured list replaces the default whole).</summary>
    public double[] Schedule => RetryScheduleSeconds is { Length: > 0 } s ? s : DefaultSchedule;

    /// <summary>Each delay is moved by up to this fraction either way, so a receiver that came back is not hit by every sender at once.</summary>
    public double Jitter { get; set; } = 0.1;

    /// <summary>How long a receiver has, once connected, to send its answer's headers (the body is never read).</summary>
    public int TimeoutSeconds { get; set; } = 10;

    /// <summary>How long connecting to a receiver may take.</summary>
    public int ConnectTimeoutSeconds { get; set; } = 5;

    /// <summary>How often the relay looks for due messages when nothing woke it.</summary>
    public int PollMilliseconds { get; set; } = 1000;

    /// <summary>Messages sent at once by one replica.</summary>
    public int Concurrency { get; set; } = 16;

    /// <summary>
    /// Messages of one tenant in flight at once (over all replicas): a tenant whose receiver is slow or silent holds at
    /// most this many of the relay's slots, and the others' messages go meanwhile.
    /// </summary>
    public int PerTenantConcurrency { get; set; } = 4;

    /// <summary>Lets webhooks reach loopback and private addresses (tests, receivers inside the same network).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Single <c>host:port</c> endpoints let through the address guard while it is on (a receiver on the same network).</summary>
    public string[] AllowedPrivateEndpoints { get; set; } = [];

    /// <summary>
    /// The key (base64, 32 bytes) that encrypts the apps' signing secrets in the database. Unset, it is derived from the
    /// platform's first admin key; set it (the same on every replica) so that a copy of the database alone reveals nothing.
    /// </summary>
    public string? SecretKey { get; set; }

    /// <summary>How long a finished message (delivered or failed) and its attempts stay in the delivery log.</summary>
    public int LogRetentionDays { get; set; } = 30;

    /// <summary>The longest the previous secret may stay valid after a rotation.</summary>
    public int MaxRotationOverlapSeconds { get; set; } = 7 * 86400;
}

/// <summary>The events a job sends and how a filter of them is stored (comma-delimited on both sides, so one LIKE finds one).</summary>
public static class WebhookEvents
{
    public const string Started = "started";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Canceled = "canceled";

    public static readonly string[] All = [Started, Completed, Failed, Canceled];

    /// <summary>The stored form of a filter; null or empty means every event. An unknown name is invalid input.</summary>
    public static string Normalize(IReadOnlyList<string>? events, string field)
    {
        if (events is null || events.Count == 0)
        {
            return "," + string.Join(",", All) + ",";
        }

        foreach (var e in events)
        {
            if (!All.Contains(e))
            {
                throw AtelierException.InvalidInput(field, $"'{e}' is not an event; the events are {string.Join(", ", All)}");
            }
        }

        return "," + string.Join(",", All.Where(events.Contains)) + ",";
    }

    public static IReadOnlyList<string> Parse(string? stored) =>
        stored is null ? [] : stored.Split(',', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The event a job's final state sends (an aborted job was canceled whose worker did not stop).</summary>
    public static string? OfFinalState(string state) => state switch
    {
        Jobs.JobQueue.Succeeded => Completed,
        Jobs.JobQueue.Failed => Failed,
        Jobs.JobQueue.Canceled or Jobs.JobQueue.Aborted => Canceled,
        _ => null,
    };
}

/// <summary>
/// Standard Webhooks v1 signatures: <c>v1,</c> + base64 HMAC-SHA256 over <c>{id}.{timestamp}.{body}</c>, keyed by the
/// bytes of a <c>whsec_</c> secret; several signatures (one per valid secret) separated by spaces.
/// </summary>
public static class WebhookSigning
{
    public const string SecretPrefix = "whsec_";

    public static string NewSecret() => SecretPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static byte[] KeyOf(string secret) => Convert.FromBase64String(secret[SecretPrefix.Length..]);

    public static string Sign(string id, long timestamp, string body, IEnumerable<string> secrets) =>
        string.Join(' ', secrets.Select(s => "v1," + Convert.ToBase64String(
            HMACSHA256.HashData(KeyOf(s), Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}")))));
}

/// <summary>
/// Encrypts the apps' signing secrets at rest (AES-GCM, a random nonce each time): the key is
/// <see cref="WebhookOptions.SecretKey"/>, else derived from the platform's first admin key hash.
/// </summary>
public sealed class WebhookSecretBox(IServiceScopeFactory scopes, IOptions<WebhookOptions> options)
{
    private byte[]? _key;

    private async Task<byte[]> KeyAsync(CancellationToken ct)
    {
        if (_key is { } known)
        {
            return known;
        }

        if (options.Value.SecretKey is { Length: > 0 } configured)
        {
            var bytes = Convert.FromBase64String(configured);
            return _key = bytes.Length == 32 ? bytes : throw new InvalidOperationException("Atelier:Webhooks:SecretKey must be 32 bytes in base64.");
        }

        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var root = await db.PlatformKeys.AsNoTracking().Where(k => k.Scope == "admin").OrderBy(k => k.CreatedAt).Select(k => k.SecretHash).FirstAsync(ct);
        return _key = HKDF.DeriveKey(HashAlgorithmName.SHA256, root, 32, info: "atelier webhook secrets v1"u8.ToArray());
    }

    public async Task<byte[]> SealAsync(string secret, CancellationToken ct)
    {
        using var aes = new AesGcm(await KeyAsync(ct), 16);
        var plain = Encoding.UTF8.GetBytes(secret);
        var sealedBytes = new byte[12 + 16 + plain.Length];
        RandomNumberGenerator.Fill(sealedBytes.AsSpan(0, 12));
        aes.Encrypt(sealedBytes.AsSpan(0, 12), plain, sealedBytes.AsSpan(28), sealedBytes.AsSpan(12, 16));
        return sealedBytes;
    }

    public async Task<string> OpenAsync(byte[] sealedBytes, CancellationToken ct)
    {
        using var aes = new AesGcm(await KeyAsync(ct), 16);
        var plain = new byte[sealedBytes.Length - 28];
        aes.Decrypt(sealedBytes.AsSpan(0, 12), sealedBytes.AsSpan(28), sealedBytes.AsSpan(12, 16), plain);
        return Encoding.UTF8.GetString(plain);
    }
}

/// <summary>
/// The transactional outbox: a webhook message is inserted by the same transaction that changes the job's state (one
/// INSERT … SELECT that writes nothing when the job has no webhook or its filter leaves the event out), so a state
/// change without its message, or a message without its change, cannot be committed.
/// </summary>
public static class WebhookOutbox
{
    private const string Columns = """("Id", "TenantId", "AppId", "JobId", "Event", "JobAttempt", "Url", "State", "Tries", "MaxTries", "NextAttemptAt", "CreatedAt")""";

    /// <summary>The INSERT … SELECT over <paramref name="source"/> (a table or CTE with the job's columns) with parameters {id}, {event}, {maxTries}, {now}.</summary>
    public static string InsertFrom(string source, int id, int evt, int maxTries, int now) => $$"""
        INSERT INTO webhook_deliveries {{Columns}}
        SELECT {{{id}}}, "TenantId", "AppId", "Id", {{{evt}}}, "Attempt", "WebhookUrl", 'pending', 0, {{{maxTries}}}, {{{now}}}, {{{now}}}
        FROM {{source}} WHERE "WebhookUrl" IS NOT NULL AND "AppId" IS NOT NULL AND "WebhookEvents" LIKE '%,' || {{{evt}}} || ',%'
        """;

    /// <summary>Queues <paramref name="evt"/> of one job when the job asked for it; call inside the state change's transaction.</summary>
    public static async Task<bool> EnqueueAsync(AtelierDb db, string jobId, string evt, int maxTries, TimeProvider clock, CancellationToken ct)
    {
        var sql = InsertFrom("jobs", 0, 1, 2, 3) + """ AND "Id" = {4}""";
        return await db.Database.ExecuteSqlRawAsync(sql, [Common.Ids.New("msg", clock), evt, maxTries, clock.GetUtcNow().UtcDateTime, jobId], ct) > 0;
    }
}

/// <summary>Ends messages that will not be sent: <c>failed</c> with <c>s_webhook_invokefail</c> and <paramref name="reason"/> (they stay in the log).</summary>
public static class WebhookEnd
{
    public const string AppDeleted = "the app was deleted";

    public static Task<int> FailAsync(IQueryable<Data.Entities.WebhookDelivery> messages, string reason, DateTime now, CancellationToken ct) =>
        messages.ExecuteUpdateAsync(u => u.SetProperty(d => d.State, WebhookRelay.FailedState).SetProperty(d => d.LockedUntil, (DateTime?)null)
            .SetProperty(d => d.FinishedAt, now).SetProperty(d => d.ErrorCode, ErrorCatalog.s_webhook_invokefail.Code).SetProperty(d => d.LastError, reason), ct);
}

/// <summary>Wakes the relay when a message was queued on this replica (others find it by polling).</summary>
public sealed class WebhookSignal : IDisposable
{
    private readonly Jobs.JobSignal _signal = new();

    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);

    public void Pulse() => _signal.Pulse();

    public void Dispose() => _signal.Dispose();
}
