using System.Net;
using System.Text;
using System.Text.Json;
using Atelier.Contracts;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Jobs;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Webhooks;

/// <summary>
/// Sends the outbox: takes due messages (held for a while so no other replica sends them at once; a crashed replica's
/// hold lapses and the message goes again, with the same <c>webhook-id</c>), signs them per Standard Webhooks and posts
/// them through the address guard, without following redirects. A 2xx delivers; 410, or an address the guard refuses,
/// ends it at once; anything else is tried again on the schedule (with jitter, and no sooner than a <c>Retry-After</c>)
/// until the schedule ends, when it is marked <c>s_webhook_invokefail</c>. Every attempt is logged.
/// Fairness: messages are taken round-robin by tenant, at most <see cref="WebhookOptions.PerTenantConcurrency"/> of a
/// tenant in flight, and each is sent on its own as soon as a slot is free, so one tenant's silent receiver delays only
/// that tenant's messages.
/// </summary>
public sealed partial class WebhookRelay(IServiceScopeFactory scopes, WebhookSignal signal, WebhookSigningKeys keys, TimeProvider clock,
    IOptions<WebhookOptions> options, ILogger<WebhookRelay> logger) : BackgroundService
{
    public const string Pending = "pending";
    public const string Delivered = "delivered";
    public const string FailedState = "failed";

    private WebhookOptions O => options.Value;
    private readonly HttpClient _http = CreateClient(options.Value);
    private readonly List<Task> _sending = [];
    private int _busy;

    /// <summary>When the last take began (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
    private long _lastTake;

    /// <summary>The least time between two takes while sends are in flight.</summary>
    private static readonly TimeSpan TakeGap = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Ends the outcome writer: not at the host's stop (the outcomes of sends already answered are still written), but
    /// a grace period after it, or at once if the relay is disposed.
    /// </summary>
    private readonly CancellationTokenSource _writerStop = new();

    /// <summary>How long after the host's stop the outcomes still waiting are written.</summary>
    private static readonly TimeSpan WriterGrace = TimeSpan.FromSeconds(10);

    /// <summary>Attempts whose outcome waits to be written: one writer writes all that are waiting in one transaction.</summary>
    private readonly System.Threading.Channels.Channel<Outcome> _outcomes =
        System.Threading.Channels.Channel.CreateUnbounded<Outcome>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });

    /// <summary>An attempt, and what it makes of its message; <see cref="Written"/> ends when both are committed.</summary>
    private sealed record Outcome(WebhookDelivery Delivery, WebhookAttempt Attempt, int Tries, string State, int? LastStatus, string? LastError,
        DateTime NextAttemptAt, DateTime? FinishedAt, string? ErrorCode, string? Payload)
    {
        public TaskCompletionSource Written { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static HttpClient CreateClient(WebhookOptions o)
    {
        var handler = AddressGuard.CreateHandler(o.AllowPrivateNetworks, (host, port) => IsAllowedEndpoint(o, host, port));
        handler.ConnectTimeout = TimeSpan.FromSeconds(Math.Max(1, o.ConnectTimeoutSeconds));
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The longest one HTTP exchange may take: connecting, then waiting for the answer's headers.</summary>
    private TimeSpan SendLimit => TimeSpan.FromSeconds(Math.Max(1, O.ConnectTimeoutSeconds) + Math.Max(1, O.TimeoutSeconds));

    /// <summary>
    /// How long a taken message is held from other replicas: longer than its exchange can last, with room for the reads
    /// before it and the writes after it, so it is never sent twice at once. A message is sent as soon as it is taken.
    /// </summary>
    private TimeSpan Hold => SendLimit + TimeSpan.FromSeconds(30);

    public static bool IsAllowedEndpoint(WebhookOptions o, string host, int port) =>
        o.AllowedPrivateEndpoints.Contains($"{host.Trim('[', ']')}:{port}", StringComparer.OrdinalIgnoreCase);

    public static bool IsAllowedEndpoint(WebhookOptions o, string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && IsAllowedEndpoint(o, uri.IdnHost, uri.Port);

    /// <summary>How long after try number <paramref name="triesDone"/> the next one is made: the schedule's entry, moved by the jitter.</summary>
    public static TimeSpan DelayAfter(int triesDone, double[] schedule, double jitter, Random random)
    {
        var seconds = schedule.Length == 0 ? 0 : schedule[Math.Min(triesDone, schedule.Length - 1)];
        return TimeSpan.FromSeconds(seconds * (1 + (((random.NextDouble() * 2) - 1) * jitter)));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var writer = WriteOutcomesAsync(_writerStop.Token);
        var poll = TimeSpan.FromMilliseconds(Math.Max(50, O.PollMilliseconds));
        while (!stoppingToken.IsCancellationRequested)
        {
            // Woken by a new message, by a send that ended (a slot is free), or by the poll.
            var woken = signal.WaitAsync(poll, stoppingToken);
            if (Volatile.Read(ref _busy) > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(_lastTake) is var since && since < TakeGap)
            {
                // Under load, takes are spaced: one take's reads and hold then serve the messages that came due and the
                // slots that came free meanwhile, rather than one take per message. An idle relay takes at once.
                try
                {
                    await Task.Delay(TakeGap - since, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    continue;
                }
            }

            var (free, taken) = (0, 0);
            try
            {
                await PruneIfDueAsync(stoppingToken);
                (free, taken) = await StartDueAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogRelayFailed(logger, e);
            }

            if (free == 0 || taken < free)
            {
                await woken;
            }
        }

        // Sends already answered still have their outcome written (else their message would go again when its hold
        // lapses), for a while: then the writer stops too, and what is left goes again.
        _writerStop.CancelAfter(WriterGrace);
        try
        {
            await Task.WhenAll(_sending);
        }
        catch (Exception e) when (e is OperationCanceledException || stoppingToken.IsCancellationRequested)
        {
            // Stopping: a message cut short goes again when its hold lapses.
        }

        _outcomes.Writer.TryComplete();
        try
        {
            await writer;
        }
        catch (OperationCanceledException) when (_writerStop.IsCancellationRequested)
        {
            // The grace ran out: an outcome not written leaves its message held; it goes again when the hold lapses.
        }
    }

    /// <summary>
    /// Writes the attempts' outcomes: all those waiting, in one transaction (raw statements keyed by each message's id and tenant),
    /// so that on SQLite the relay takes the write turn once for a batch rather than once a message, and commits once.
    /// A batch that fails is written again one outcome at a time, so one bad row fails only its own attempt.
    /// </summary>
    private async Task WriteOutcomesAsync(CancellationToken ct)
    {
        try
        {
            await WriteOutcomesUntilStoppedAsync(ct);
        }
        finally
        {
            // Nothing is left waiting on a writer that is gone: later sends are refused, and those queued are canceled.
            _outcomes.Writer.TryComplete();
            while (_outcomes.Reader.TryRead(out var left))
            {
                left.Written.TrySetCanceled(CancellationToken.None);
            }
        }
    }

    private async Task WriteOutcomesUntilStoppedAsync(CancellationToken ct)
    {
        var batch = new List<Outcome>();
        while (await _outcomes.Reader.WaitToReadAsync(ct))
        {
            batch.Clear();
            while (batch.Count < 256 && _outcomes.Reader.TryRead(out var outcome))
            {
                batch.Add(outcome);
            }

            try
            {
                await WriteAsync(batch, ct);
                batch.ForEach(o => o.Written.TrySetResult());
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                foreach (var o in batch)
                {
                    try
                    {
                        if (batch.Count > 1)
                        {
                            await WriteAsync([o], ct);
                            o.Written.TrySetResult();
                        }
                        else
                        {
                            o.Written.TrySetException(e);
                        }
                    }
                    catch (Exception one) when (one is not OperationCanceledException || !ct.IsCancellationRequested)
                    {
                        o.Written.TrySetException(one);
                    }
                }
            }
            finally
            {
                // Stopped in the middle (the grace ran out): what this batch did not write is canceled, not left waiting.
                batch.ForEach(o => o.Written.TrySetCanceled(CancellationToken.None));
            }
        }
    }

    /// <summary>One attempt's row and its message's new state: two statements, run for a batch as one command.</summary>
    private const string OutcomeSql = """
        INSERT INTO webhook_attempts ("Id", "TenantId", "DeliveryId", "Number", "At", "Status", "LatencyMs", "Error")
        VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7});
        UPDATE webhook_deliveries SET "Tries" = {3}, "State" = {8}, "LastStatus" = {5}, "LastError" = {9}, "LockedUntil" = NULL,
            "NextAttemptAt" = {10}, "FinishedAt" = {11}, "ErrorCode" = {12}, "Payload" = COALESCE("Payload", {13})
        WHERE "Id" = {2} AND "TenantId" = {1};
        """;

    /// <summary>Outcomes written per command (each takes 14 parameters).</summary>
    private const int OutcomesPerCommand = 64;

    /// <summary>
    /// Writes a batch of outcomes in one transaction and one turn: raw statements, each message's row keyed by its id and
    /// tenant. The body made at a first attempt is kept unless one was stored meanwhile (then the stored one stands).
    /// </summary>
    private async Task WriteAsync(IReadOnlyList<Outcome> batch, CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        if (db.WriterNow is { } writes)
        {
            // SQLite: one write on the file's writer, a prepared statement per outcome (committed with the writes beside it).
            await writes.RunAsync(w =>
            {
                foreach (var o in batch)
                {
                    w.Execute(OutcomeSql, OutcomeParameters(o));
                }

                return 0;
            }, ct);
            return;
        }

        using var turn = await scope.ServiceProvider.GetRequiredService<IDatabaseProvider>().WriteTurnAsync(db, ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        foreach (var chunk in batch.Chunk(OutcomesPerCommand))
        {
            var sql = new StringBuilder();
            var parameters = new List<object?>(chunk.Length * 14);
            foreach (var o in chunk)
            {
                var first = parameters.Count;
                sql.Append(first == 0 ? OutcomeSql : RawCommands.Shifted(OutcomeSql, first));
                parameters.AddRange(OutcomeParameters(o));
            }

            await RawCommands.ExecuteAsync(db, sql.ToString(), parameters, ct);
        }

        await tx.CommitAsync(ct);
    }

    private static object?[] OutcomeParameters(Outcome o)
    {
        var a = o.Attempt;
        return [a.Id, a.TenantId, a.DeliveryId, o.Tries, a.At, a.Status, a.LatencyMs, a.Error, o.State, o.LastError, o.NextAttemptAt, o.FinishedAt, o.ErrorCode, o.Payload];
    }

    private DateTime _lastPrune;

    /// <summary>Once an hour: finished messages older than the log's retention are deleted with their attempts.</summary>
    private async Task PruneIfDueAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        if (now - _lastPrune < TimeSpan.FromHours(1))
        {
            return;
        }

        _lastPrune = now;
        var cutoff = now.AddDays(-Math.Max(1, O.LogRetentionDays));
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var old = db.WebhookDeliveries.IgnoreQueryFilters().Where(d => d.State != Pending && d.FinishedAt < cutoff).Select(d => d.Id);
        await db.WebhookAttempts.IgnoreQueryFilters().Where(a => old.Contains(a.DeliveryId)).ExecuteDeleteAsync(ct);
        await db.WebhookDeliveries.IgnoreQueryFilters().Where(d => d.State != Pending && d.FinishedAt < cutoff).ExecuteDeleteAsync(ct);
    }

    /// <summary>Takes as many due messages as this replica has free slots, fairly across tenants, and starts sending each.</summary>
    private async Task<(int Free, int Taken)> StartDueAsync(CancellationToken ct)
    {
        _sending.RemoveAll(t => t.IsCompleted);
        var free = Math.Max(1, O.Concurrency) - Volatile.Read(ref _busy);
        if (free <= 0)
        {
            return (0, 0);
        }

        _lastTake = System.Diagnostics.Stopwatch.GetTimestamp();
        var due = await TakeDueAsync(free, ct);
        foreach (var (d, made) in due)
        {
            Interlocked.Increment(ref _busy);
            _sending.Add(SendOneAsync(d, made, ct));
        }

        return (free, due.Count);
    }

    private async Task SendOneAsync(WebhookDelivery d, string? made, CancellationToken ct)
    {
        var triesBefore = d.Tries; // a failure counts from what the message had
        try
        {
            await Task.Yield();
            await SendAsync(d, made, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Our own failure (not the receiver's): it counts as an attempt, so a message that cannot be sent ends.
            LogSendFailed(logger, d.Id, e);
            await CountFailureAsync(d, triesBefore, ct);
        }
        finally
        {
            Interlocked.Decrement(ref _busy);
            signal.Wake(); // a slot is free: no message was queued
        }
    }

    /// <summary>Whether the last take left due messages behind (the relay's loop alone reads and writes it).</summary>
    private bool _moreDue;

    /// <summary>The tenant after which the next take starts looking, so that over takes every tenant comes first in turn.</summary>
    private string _cursor = "";

    /// <summary>Tenants that have pending messages, looked at per read of <see cref="TenantsSql"/>.</summary>
    private const int TenantsPerScan = 64;

    /// <summary>
    /// The tenants after <c>{0}</c> that have pending messages, in order, at most <c>{1}</c> + 1 of them, each with
    /// whether one is due and not held, and how many are held (a tenant at its budget is passed over without a
    /// further read: every job's end wakes the relay, most often while the tenant's budget is in use). The due test
    /// is the earliest unheld message's time, read in the index's order: as an EXISTS, PostgreSQL chose a scan of the
    /// whole table when one tenant had most of the messages. A walk from one tenant to the next on the index (State, TenantId,
    /// NextAttemptAt), a seek each, so its cost is the number of tenants, not of messages.
    /// </summary>
    private const string TenantsSql = """
        WITH RECURSIVE t(id, n) AS (
            SELECT (SELECT "TenantId" FROM webhook_deliveries WHERE "State" = 'pending' AND "TenantId" > {0} ORDER BY "TenantId" LIMIT 1), 0
            UNION ALL
            SELECT (SELECT w."TenantId" FROM webhook_deliveries w WHERE w."State" = 'pending' AND w."TenantId" > t.id ORDER BY w."TenantId" LIMIT 1), t.n + 1
            FROM t WHERE t.id IS NOT NULL AND t.n < {1})
        SELECT t.id, CASE WHEN (
            SELECT x."NextAttemptAt" FROM webhook_deliveries x WHERE x."State" = 'pending' AND x."TenantId" = t.id
              AND (x."LockedUntil" IS NULL OR x."LockedUntil" < {2}) ORDER BY x."NextAttemptAt" LIMIT 1) <= {2} THEN 1 ELSE 0 END,
            (SELECT COUNT(*) FROM webhook_deliveries b WHERE b."State" = 'pending' AND b."TenantId" = t.id AND b."LockedUntil" >= {2})
        FROM t WHERE t.id IS NOT NULL ORDER BY t.n
        """;

    /// <summary>Whether any message is due and not held.</summary>
    private const string AnyDueSql = """
        SELECT "Id" FROM webhook_deliveries
        WHERE "State" = 'pending' AND "NextAttemptAt" <= {0} AND ("LockedUntil" IS NULL OR "LockedUntil" < {0})
        LIMIT 1
        """;

    /// <summary>
    /// A tenant's oldest due messages that no one holds (at most <c>{2}</c>), each with how many of the tenant's messages
    /// are held now by any replica: an index range each (State, TenantId, NextAttemptAt and State, TenantId, LockedUntil).
    /// </summary>
    private const string TenantDueSql = """
        SELECT x."Id", (SELECT COUNT(*) FROM webhook_deliveries b WHERE b."State" = 'pending' AND b."TenantId" = {0} AND b."LockedUntil" >= {1})
        FROM webhook_deliveries x
        WHERE x."State" = 'pending' AND x."TenantId" = {0} AND x."NextAttemptAt" <= {1} AND (x."LockedUntil" IS NULL OR x."LockedUntil" < {1})
        ORDER BY x."NextAttemptAt", x."Id"
        LIMIT {2}
        """;

    /// <summary>
    /// Holds and returns up to <paramref name="limit"/> due messages: each tenant's oldest first, then each one's second,
    /// and so on (round-robin, starting after the tenant of the last message the last take placed), leaving out a tenant's messages past
    /// its budget of messages in flight (held by any replica). The reads look only at the tenants with pending messages
    /// and at each one's first messages, never at the whole backlog (a look over every due message made each take cost
    /// as much as the backlog, and the relay fell further behind as it grew: docs/benchmarks.md, webhooks). The hold is
    /// one statement that checks each row again as it updates it, so two replicas never take one message.
    /// </summary>
    private async Task<List<(WebhookDelivery Delivery, string? Made)>> TakeDueAsync(int limit, CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var budget = Math.Max(1, O.PerTenantConcurrency);

        // One seek first (index State, NextAttemptAt): most looks find nothing due, and then the walk below, whose length
        // is the number of tenants with pending messages (retries included), is not made. Not when a message was queued
        // on this replica since the last take, or the last take left due messages behind (its limit, or a tenant's
        // budget): then something is due, and the seek, which steps over every held message and every version the
        // holds and outcomes left in its range until vacuum, was the relay's dearest read on PostgreSQL (about 4 ms
        // and 600 buffers a call under load; docs/benchmarks.md, issue 18).
        var known = signal.TakeQueued() | _moreDue;
        _moreDue = true; // until this take has seen what is left (a take that fails looks again)
        if (!known && (await RawCommands.ReadAsync(db, AnyDueSql, [now], r => r.GetString(0), ct)).Count == 0)
        {
            _moreDue = false;
            return [];
        }

        var more = false;

        // Tenants with a due message, from the cursor on and then from the start, until `limit` of them have a budget
        // left (each gives at least one message) or every tenant was looked at.
        var picks = new List<(string Tenant, List<string> Ids)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var from in _cursor.Length == 0 ? [""] : new[] { _cursor, "" })
        {
            var after = from;
            var done = false;
            while (!done && picks.Count < limit)
            {
                var tenants = await RawCommands.ReadAsync(db, TenantsSql, [after, TenantsPerScan - 1, now],
                    r => (Id: r.GetString(0), Due: Convert.ToInt64(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture) == 1,
                        Held: Convert.ToInt64(r.GetValue(2), System.Globalization.CultureInfo.InvariantCulture)), ct);
                done = tenants.Count < TenantsPerScan;
                foreach (var (tenant, due, held) in tenants)
                {
                    after = tenant;
                    if (!seen.Add(tenant))
                    {
                        // Wrapped around to where the first pass began.
                        done = true;
                        break;
                    }

                    if (!due || held >= budget)
                    {
                        more |= due;
                        continue;
                    }

                    var rows = await RawCommands.ReadAsync(db, TenantDueSql, [tenant, now, budget], r => (Id: r.GetString(0), Held: Convert.ToInt64(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture)), ct);
                    var free = rows.Take((int)Math.Max(0, budget - (rows.Count > 0 ? rows[0].Held : 0))).Select(x => x.Id).ToList();
                    more |= rows.Count > free.Count;
                    if (free.Count > 0)
                    {
                        picks.Add((tenant, free));
                        if (picks.Count >= limit)
                        {
                            more = true; // the walk stopped here: tenants after this one were not looked at
                            break;
                        }
                    }
                }
            }

            if (picks.Count >= limit)
            {
                break;
            }
        }

        if (picks.Count == 0)
        {
            _moreDue = more;
            return [];
        }

        // Round-robin: every tenant's first, then every tenant's second, …
        // The next take starts after the tenant of the last message placed, so a tenant left out when the limit ran out
        // comes first then.
        var order = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var rank = 0; order.Count < limit && picks.Any(p => p.Ids.Count > rank); rank++)
        {
            foreach (var p in picks.Where(p => p.Ids.Count > rank))
            {
                order[p.Ids[rank]] = order.Count;
                _cursor = p.Tenant;
                if (order.Count >= limit)
                {
                    break;
                }
            }
        }

        var ids = order.Keys.ToList();
        _moreDue = more || picks.Sum(p => p.Ids.Count) > ids.Count;
        if (db.WriterNow is { } writes)
        {
            // SQLite: one write on the file's writer, the same check per message with one prepared statement.
            var held = await writes.RunAsync(w =>
            {
                var rows = new List<WebhookDelivery>(ids.Count);
                foreach (var id in ids)
                {
                    rows.AddRange(w.Query(HoldOneSql, [now + Hold, now, id], ReadHeld));
                }

                return rows;
            }, ct);
            return await WithBodiesAsync(db, [.. held.OrderBy(d => order[d.Id])], ct);
        }

        var sql = $$"""
            UPDATE webhook_deliveries SET "LockedUntil" = {0}
            WHERE "Id" IN ({{string.Join(", ", ids.Select((_, i) => "{" + (i + 2).ToString(System.Globalization.CultureInfo.InvariantCulture) + "}"))}})
              AND "State" = 'pending' AND "NextAttemptAt" <= {1} AND ("LockedUntil" IS NULL OR "LockedUntil" < {1})
            RETURNING "Id", "TenantId", "AppId", "JobId", "Event", "JobAttempt", "Url", "State", "Tries", "MaxTries", "NextAttemptAt",
                "LockedUntil", "Payload", "CreatedAt"
            """;
        // Its writes take their turn with the queue's on SQLite (see IDatabaseProvider.WriteTurnAsync).
        List<WebhookDelivery> taken;
        using (await scope.ServiceProvider.GetRequiredService<IDatabaseProvider>().WriteTurnAsync(db, ct))
        {
            taken = await RawCommands.QueryAsync(db, sql, [now + Hold, now, .. ids], ReadHeld, ct);
        }

        return await WithBodiesAsync(db, [.. taken.OrderBy(d => order[d.Id])], ct);
    }

    /// <summary>
    /// The bodies of the taken messages that have none yet (their first attempt), made from their jobs read in one
    /// statement for the whole take rather than one read per message. A message whose job is not found here (or not its
    /// tenant's) has none made: its send reads the job on its own and fails as before.
    /// </summary>
    private static async Task<List<(WebhookDelivery Delivery, string? Made)>> WithBodiesAsync(AtelierDb db, List<WebhookDelivery> taken, CancellationToken ct)
    {
        var jobIds = taken.Where(d => d.Payload is null).Select(d => d.JobId).Distinct(StringComparer.Ordinal).ToList();
        var jobs = jobIds.Count == 0 ? [] : (await HotQueries.JobsByIds(db, jobIds, ct)).ToDictionary(j => j.Id, StringComparer.Ordinal);
        return [.. taken.Select(d => (d, d.Payload is null && jobs.TryGetValue(d.JobId, out var job) && job.TenantId == d.TenantId ? Body(d, job) : null))];
    }

    /// <summary>The hold of one message, checked again as it is updated (SQLite's writer runs it once per message).</summary>
    private const string HoldOneSql = """
        UPDATE webhook_deliveries SET "LockedUntil" = {0}
        WHERE "Id" = {2} AND "State" = 'pending' AND "NextAttemptAt" <= {1} AND ("LockedUntil" IS NULL OR "LockedUntil" < {1})
        RETURNING "Id", "TenantId", "AppId", "JobId", "Event", "JobAttempt", "Url", "State", "Tries", "MaxTries", "NextAttemptAt",
            "LockedUntil", "Payload", "CreatedAt"
        """;

    private static WebhookDelivery ReadHeld(System.Data.Common.DbDataReader r) => new()
    {
        Id = r.GetString(0), TenantId = r.GetString(1), AppId = r.GetString(2), JobId = r.GetString(3), Event = r.GetString(4),
        JobAttempt = r.GetInt32(5), Url = r.GetString(6), State = r.GetString(7), Tries = r.GetInt32(8), MaxTries = r.GetInt32(9),
        NextAttemptAt = Utc(r.GetDateTime(10)), LockedUntil = r.IsDBNull(11) ? null : Utc(r.GetDateTime(11)),
        Payload = r.IsDBNull(12) ? null : r.GetString(12), CreatedAt = Utc(r.GetDateTime(13)),
    };

    private async Task CountFailureAsync(WebhookDelivery d, int triesBefore, CancellationToken ct)
    {
        using var scope = scopes.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
        var now = clock.GetUtcNow().UtcDateTime;
        var tries = triesBefore + 1;
        var giveUp = tries >= d.MaxTries;
        using var turn = await scope.ServiceProvider.GetRequiredService<IDatabaseProvider>().WriteTurnAsync(db, ct);
        await db.WebhookDeliveries.IgnoreQueryFilters().Where(x => x.Id == d.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.Tries, tries)
            .SetProperty(x => x.LockedUntil, (DateTime?)null).SetProperty(x => x.LastError, "the message could not be sent (see the server log)")
            .SetProperty(x => x.State, giveUp ? FailedState : Pending).SetProperty(x => x.NextAttemptAt, now + DelayAfter(tries, O.Schedule, O.Jitter, Random.Shared))
            .SetProperty(x => x.FinishedAt, giveUp ? now : null).SetProperty(x => x.ErrorCode, giveUp ? ErrorCatalog.s_webhook_invokefail.Code : null)
            .SetProperty(x => x.Payload, x => x.Payload ?? d.Payload), ct);
    }

    private async Task SendAsync(WebhookDelivery d, string? made, CancellationToken ct)
    {
        // The body was made in the take (or stored at an earlier attempt) and the app's secrets are kept: most sends read nothing.
        made = d.Payload is null ? made : null;
        var secrets = keys.Cached(d.TenantId, d.AppId);
        if ((d.Payload ?? made) is null || secrets is null)
        {
            using var scope = scopes.CreateScope();
            var db = scope.ServiceProvider.GetRequiredService<AtelierDb>();
            db.TenantScope = d.TenantId;
            made = d.Payload is null ? made ?? await MakePayloadAsync(db, d, ct) : null;
            secrets = await keys.SecretsAsync(db, d.TenantId, d.AppId, ct);
            if (secrets is null)
            {
                // The app was deleted meanwhile: nothing signs for it any more.
                await WebhookEnd.FailAsync(db.WebhookDeliveries.Where(x => x.Id == d.Id), WebhookEnd.AppDeleted, clock.GetUtcNow().UtcDateTime, ct);
                return;
            }
        }

        var payload = d.Payload ?? made!;
        d.Payload = payload; // a failure counted after the post (CountFailureAsync) stores it too

        var timestamp = clock.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, d.Url) { Content = new StringContent(payload, Encoding.UTF8, "application/json") };
        request.Headers.Add("webhook-id", d.Id);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSigning.Sign(d.Id, timestamp, payload, secrets));
        request.Headers.UserAgent.ParseAdd("Atelier-Webhooks/1.0");

        var at = clock.GetUtcNow().UtcDateTime;
        var started = clock.GetTimestamp();
        int? status = null;
        string? error = null;
        var permanent = false;
        TimeSpan? retryAfter = null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(SendLimit);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = (int)response.StatusCode;
            retryAfter = response.Headers.RetryAfter?.Delta ?? (response.Headers.RetryAfter?.Date is { } date ? date - clock.GetUtcNow() : null);
            if (!response.IsSuccessStatusCode)
            {
                error = status is >= 300 and < 400 ? $"{status}: redirects are not followed" : $"{status} {response.ReasonPhrase}";
                permanent = response.StatusCode == HttpStatusCode.Gone;
            }
        }
        catch (HttpRequestException e) when (e.InnerException is DownloadRefusedException refused)
        {
            error = $"address refused: {refused.Message}";
            permanent = true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            error = $"no answer within {SendLimit.TotalSeconds:0} s";
        }
        catch (HttpRequestException e)
        {
            error = e.HttpRequestError == HttpRequestError.NameResolutionError ? "the name did not resolve" : e.Message;
        }

        var latency = (int)clock.GetElapsedTime(started).TotalMilliseconds;
        var tries = d.Tries + 1;
        var now = clock.GetUtcNow().UtcDateTime;
        var delivered = error is null;
        var giveUp = !delivered && (permanent || tries >= d.MaxTries);
        var next = now + Max(DelayAfter(tries, O.Schedule, O.Jitter, Random.Shared), retryAfter is { } ra && ra > TimeSpan.Zero
            ? TimeSpan.FromSeconds(Math.Min(ra.TotalSeconds, 86400)) : TimeSpan.Zero);
        var state = delivered ? Delivered : giveUp ? FailedState : Pending;
        var lastError = error is null ? null : giveUp && !permanent ? $"{error} (gave up after {tries} attempts)" : error;
        if (lastError?.Length > 1024)
        {
            lastError = lastError[..1024];
        }

        // The attempt and the message's new state are written together, with the other attempts that ended meanwhile
        // (WriteOutcomesAsync); the message's slot stays taken until they are committed.
        var attempt = new WebhookAttempt
        {
            Id = Common.Ids.New("wha", clock), TenantId = d.TenantId, DeliveryId = d.Id, Number = tries, At = at, Status = status, LatencyMs = latency,
            Error = error?.Length > 1024 ? error[..1024] : error,
        };
        var outcome = new Outcome(d, attempt, tries, state, status, lastError, state == Pending ? next : now, state == Pending ? null : now,
            giveUp ? ErrorCatalog.s_webhook_invokefail.Code : null, made);
        if (!_outcomes.Writer.TryWrite(outcome))
        {
            throw new OperationCanceledException("the relay is stopping");
        }

        // Not cut short by the host's stop: the message was answered, so its outcome is written if the writer's grace allows.
        await outcome.Written.Task;
        Common.AtelierMeter.WebhookAttempts.Add(1);
        if (!delivered)
        {
            Common.AtelierMeter.WebhookFailures.Add(1);
        }

        if (giveUp)
        {
            LogGaveUp(logger, d.Id, d.JobId, tries, lastError ?? "");
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static DateTime Utc(DateTime v) => DateTime.SpecifyKind(v, DateTimeKind.Utc);

    /// <summary>
    /// The message's body, made at its first attempt from the job as it stands and kept with that attempt's outcome
    /// (<see cref="WriteAsync"/>, or with the failure <see cref="CountFailureAsync"/> counts), so every later attempt
    /// signs the same bytes. Written with the outcome rather than before the post, the body costs no write of its own on
    /// the message's way (on SQLite a write waits for its turn behind the queue's). When no outcome is written (the
    /// replica dies between the post and the commit, or stops and its writer's grace runs out), the message's next
    /// attempt (the same <c>webhook-id</c>) is made from the job again, as it stands then.
    /// </summary>
    private static async Task<string> MakePayloadAsync(AtelierDb db, WebhookDelivery d, CancellationToken ct)
    {
        // The compiled read of the job's path (it reads past the tenant filter: the tenant is checked here).
        var job = await HotQueries.JobById(db, d.JobId, ct) is { } found && found.TenantId == d.TenantId
            ? found
            : throw new InvalidOperationException($"job {d.JobId} of message {d.Id} is not the tenant's");
        return Body(d, job);
    }

    private static string Body(WebhookDelivery d, Job job)
    {
        JobResultDto? result = null;
        if (d.Event == WebhookEvents.Completed && job.ResultJson is not null)
        {
            result = JobService.ToResult(job);
        }

        return JsonSerializer.Serialize(new WebhookPayload($"job.{d.Event}", d.CreatedAt, new WebhookJobData(JobService.ToDto(job), d.JobAttempt, result)),
            AtelierJson.Options);
    }

    public override void Dispose()
    {
        _writerStop.Cancel();
        _writerStop.Dispose();
        _http.Dispose();
        base.Dispose();
    }

    [LoggerMessage(4300, LogLevel.Warning, "Webhook {DeliveryId} of job {JobId} given up after {Tries} attempts: {Error}")]
    private static partial void LogGaveUp(ILogger logger, string deliveryId, string jobId, int tries, string error);

    [LoggerMessage(4302, LogLevel.Error, "Webhook {DeliveryId} could not be sent")]
    private static partial void LogSendFailed(ILogger logger, string deliveryId, Exception exception);

    [LoggerMessage(4301, LogLevel.Error, "Webhook relay failed")]
    private static partial void LogRelayFailed(ILogger logger, Exception exception);
}

