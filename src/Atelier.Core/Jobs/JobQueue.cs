using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Contracts.Jobs;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Query;

namespace Atelier.Core.Jobs;

/// <summary>
/// The durable job queue in the database. A claim is one statement that moves the oldest queued
/// job to running with attempt + 1 and a lease: <c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, and SQLite's single
/// writer (non-deferred transactions) elsewhere. Heartbeats extend the lease; completion and failure are conditional on
/// the attempt (a fencing token), so a stale worker's late answer changes nothing; expired leases go back to the queue
/// until the attempts run out. Every state change that sends a webhook queues its message in the same transaction
/// (<see cref="WebhookOutbox"/>).
/// </summary>
public sealed class JobQueue(AtelierDb db, IDatabaseProvider provider, TimeProvider clock, IWebhookPolicy hooks, WebhookSignal relay)
{

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    private int MaxTries => hooks.MaxTries;

    private sealed record FairKeys(long? Head, long? Own);

    /// <summary>Whether one statement may change several tables here (PostgreSQL): see <see cref="IDatabaseProvider.ChainsWrites"/>.</summary>
    public bool ChainsWrites => provider.ChainsWrites;

    /// <summary>
    /// The condition a step of the completion's statement (<see cref="CompleteAsync"/>'s <c>whenDone</c>) writes under:
    /// the completion changed the job's row (<c>done</c>, the statement's update, returned it).
    /// </summary>
    public const string StateChanged = "EXISTS (SELECT 1 FROM done)";

    /// <summary>The lane of the shared workers: every agent that has no computing unit.</summary>
    public const string SharedLane = "";

    /// <summary>What a new job carries besides its body.</summary>
    public sealed record NewJob(string TenantId, string AgentId, string? ClientJobId, string RequestJson, string? ModelKey, int Priority,
        int MaxAttempts, string Kind = "job", string? CallerId = null, string? AppId = null)
    {
        public string? ModelJson { get; init; }

        /// <summary>Where the job's webhooks go, and which events (stored form, <see cref="WebhookEvents.Normalize"/>).</summary>
        public (string Url, string Events)? Webhook { get; init; }

        /// <summary>The credits the submit took, and from which entitlements.</summary>
        public (int Credits, string? From) Charged { get; init; }

        /// <summary>Whose idempotency key <see cref="ClientJobId"/> is (<see cref="Job.ClientScope"/>).</summary>
        public string ClientScope { get; init; } = "*";
    }

    /// <summary>
    /// Enqueues, or finds the job a client already submitted under the same <see cref="Job.ClientJobId"/> in the same
    /// <see cref="NewJob.ClientScope"/>: the same body gives the existing job back (<c>Created</c> false), another body
    /// is <c>b_agent_jobidexisted</c>.
    /// </summary>
    public async Task<(Job Job, bool Created)> EnqueueAsync(NewJob n, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(n.RequestJson)));
        // Start-time fair queueing: the job starts no earlier than the queue's head, and after the tenant's own last
        // queued job; so a tenant's burst of a thousand lines up behind itself, not in front of everyone else.
        // PostgreSQL: the insert reads both itself (one round trip, not two). SQLite: a raw read of committed rows (a
        // kept, prepared statement) before the insert, so the writer's turn holds the insert only.
        var pg = provider.ChainsWrites;
        long fairKey = 0;
        if (!pg)
        {
            var keys = await RawCommands.ReadAsync(db,
                """
                SELECT (SELECT MIN("FairKey") FROM jobs WHERE "State" = 'queued') AS "Head",
                       (SELECT MAX("FairKey") FROM jobs WHERE "TenantId" = {0} AND "State" = 'queued') AS "Own"
                """, [n.TenantId], r => new FairKeys(r.IsDBNull(0) ? null : r.GetInt64(0), r.IsDBNull(1) ? null : r.GetInt64(1)), ct);
            var head = keys[0].Head ?? 0;
            fairKey = Math.Max(head, keys[0].Own is { } own ? own + 1 : head);
        }

        var job = new Job
        {
            Id = Ids.New("job", clock), TenantId = n.TenantId, AgentId = n.AgentId, ClientJobId = n.ClientJobId, ClientScope = n.ClientScope, BodyHash = hash,
            RequestJson = n.RequestJson, ModelKey = n.ModelKey, State = JobStates.Queued, Priority = n.Priority, MaxAttempts = n.MaxAttempts,
            CreatedAt = Now, Kind = n.Kind, ModelJson = n.ModelJson, CallerId = n.CallerId, AppId = n.AppId, FairKey = fairKey,
            WebhookUrl = n.Webhook?.Url, WebhookEvents = n.Webhook?.Events, CreditsCharged = n.Charged.Credits, CreditScopes = n.Charged.From,
        };
        // As SaveChanges would refuse it (AtelierDb.CheckTenantWrites): a job is written in its own tenant's scope only.
        if (db.TenantScope != job.TenantId)
        {
            throw new CrossTenantWriteException(nameof(Job));
        }

        object?[] values =
        [
            job.Id, job.TenantId, job.AgentId, job.ClientJobId, job.ClientScope, job.BodyHash, job.RequestJson, job.ModelKey, job.ModelJson, job.State,
            job.Priority, job.MaxAttempts, job.CreatedAt, job.Kind, job.CallerId, job.AppId, job.FairKey, job.WebhookUrl, job.WebhookEvents,
            job.CreditsCharged, job.CreditScopes,
        ];
        try
        {
            // One raw insert (the columns a new job has; the rest start empty): EF's SaveChanges of this row cost
            // several times the statement, inside SQLite's one-writer turn. The tenant's cap is the trigger's (ActiveJobs).
            if (pg)
            {
                // PostgreSQL may end the insert to break a cycle of waits on the tenant's counter and place rows (one is
                // left: an insert at the cap waits for a place row, ActiveJobs); it is then made again.
                job.FairKey = await DbErrors.AgainOnDeadlockAsync(db,
                    async () => (await RawCommands.QueryAsync(db, InsertJobFair, values, r => r.GetInt64(0), ct))[0]);
            }
            else if (db.WriterNow is { } writes)
            {
                // SQLite: on the file's writer, committed with the writes queued beside it.
                await writes.RunAsync(w => w.Execute(InsertJob, values), ct);
            }
            else
            {
                using (db.Database.CurrentTransaction is null ? await provider.WriteTurnAsync(db, ct) : null)
                {
                    await RawCommands.ExecuteAsync(db, InsertJob, values, ct);
                }
            }

            return (job, true);
        }
        catch (DbException e) when (DbErrors.IsActiveJobsCap(e))
        {
            // The insert itself refused it (the tenant's counter, ActiveJobs): nothing was written.
            db.ChangeTracker.Clear();
            var cap = await db.TenantConfigs.IgnoreQueryFilters().AsNoTracking().Where(c => c.TenantId == n.TenantId).Select(c => c.MaxConcurrentJobs).FirstOrDefaultAsync(ct);
            throw EntitlementService.Refused(ErrCodes.ConcurrentJobs, $"the tenant has {cap} jobs queued or running, its maxConcurrentJobs");
        }
        catch (DbException e) when (n.ClientJobId is not null && DbErrors.IsUniqueViolation(e))
        {
            db.ChangeTracker.Clear();
            var existing = await db.Jobs.IgnoreQueryFilters().AsNoTracking()
                .FirstAsync(j => j.TenantId == n.TenantId && j.ClientScope == n.ClientScope && j.ClientJobId == n.ClientJobId, ct);
            return existing.BodyHash == hash
                ? (existing, false)
                : throw new AtelierException(ErrorCatalog.b_agent_jobidexisted, errCode: ErrCodes.BodyDiffers,
                    errMessage: $"job id {n.ClientJobId} was submitted before with another body");
        }
    }

    /// <summary>The columns a new job is inserted with (the rest start empty), for both inserts below.</summary>
    private const string InsertColumns = """
        INSERT INTO jobs ("Id", "TenantId", "AgentId", "ClientJobId", "ClientScope", "BodyHash", "RequestJson", "ModelKey", "ModelJson", "State",
                          "Priority", "MaxAttempts", "CreatedAt", "Kind", "CallerId", "AppId", "FairKey", "WebhookUrl", "WebhookEvents",
                          "CreditsCharged", "CreditScopes", "Attempt", "CancelRequested", "ProgressStep", "ProgressSteps", "Progress")
        """;

    private const string InsertJob = $$"""
        {{InsertColumns}}
        VALUES ({0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14}, {15}, {16}, {17}, {18}, {19}, {20}, 0, FALSE, 0, 0, 0)
        """;

    /// <summary>
    /// <see cref="InsertJob"/> with the fair key worked out by the statement, from {16} (0) up (PostgreSQL: <c>GREATEST</c>
    /// passes over a null: an empty queue, a tenant that has no queued job). The notification to the other replicas is
    /// not sent by it but after its commit, gathered with others (<see cref="JobNotifier"/> says why).
    /// </summary>
    private const string InsertJobFair = $$"""
        WITH ins AS (
        {{InsertColumns}}
        SELECT {0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, {10}, {11}, {12}, {13}, {14}, {15},
               GREATEST({16}, (SELECT MIN("FairKey") FROM jobs WHERE "State" = 'queued'),
                        (SELECT MAX("FairKey") FROM jobs WHERE "TenantId" = {1} AND "State" = 'queued') + 1),
               {17}, {18}, {19}, {20}, 0, FALSE, 0, 0, 0
        RETURNING "FairKey")
        SELECT "FairKey" FROM ins
        """;

    /// <summary>
    /// Leases the next queued job to <paramref name="workerId"/>, or returns null when there is none. The order:
    /// higher priority first; then any job that has waited longer than
    /// <paramref name="starvation"/> (no starvation); then a job for the model the slot already has loaded
    /// (<paramref name="hotModel"/>, so no model load); then the fair key (tenants round-robin), then age. A job for a
    /// model that another waiting slot holds (<paramref name="heldByOthers"/>) is left to that slot unless it starves.
    /// </summary>
    /// <param name="keyId">The worker key that asks: it holds the lease (heartbeat, images, complete and fail are fenced by it),
    /// and a revoked key claims nothing, checked by the claim statement itself.</param>
    /// <param name="lane">Whose jobs: <see cref="SharedLane"/> (the shared workers) leases the jobs of agents without a computing
    /// unit; an agent id leases that agent's jobs only (a unit's workers); null leases any job (the queue's own tests).</param>
    public async Task<ClaimedJob?> ClaimAsync(string workerId, TimeSpan lease, string? hotModel, TimeSpan starvation, CancellationToken ct,
        IReadOnlyCollection<string>? heldByOthers = null, string? keyId = null, string? lane = null)
    {
        var now = Now;
        var skipLocked = provider.SkipLocked;
        var parameters = new List<object?> { workerId, now + lease, now, now - starvation, hotModel ?? "", keyId ?? "", lane ?? "" };
        var keyValid = keyId is null ? "" : """ AND EXISTS (SELECT 1 FROM platform_keys WHERE "Id" = {5} AND "RevokedAt" IS NULL)""";
        var inLane = lane switch
        {
            null => "",
            SharedLane => " AND " + provider.AgentHasNoUnit,
            _ => """ AND "AgentId" = {6}""",
        };
        var leaveToOthers = "";
        if (heldByOthers is { Count: > 0 })
        {
            var names = heldByOthers.Select((m, i) => $"{{{parameters.Count + i}}}").ToList();
            parameters.AddRange(heldByOthers);
            leaveToOthers = $$""" AND ("ModelKey" IS NULL OR "ModelKey" NOT IN ({{string.Join(", ", names)}}) OR "CreatedAt" < {3})""";
        }

        // The started event's message (when the job asked for one) is written by the claim itself: by the same
        // statement where the database chains writes (PostgreSQL), else in the same transaction (SQLite).
        var pg = provider.ChainsWrites;
        var first = parameters.Count;
        if (pg)
        {
            parameters.AddRange([Ids.New("msg", clock), WebhookEvents.Started, MaxTries]);
        }

        // Three candidates, each one index seek (no sort of the queue; jobs tied on the fair key, which another tenant's
        // first job shares with the head, are ordered by age, whatever index the planner picks): the oldest starving job
        // of the highest priority queued (a lower priority's starving job would lose to that priority's jobs anyway; asked
        // as "that priority, then age" it is a seek, where "priority, age < bound" walked every queued job when none starved),
        // the fairest job of the slot's model, the fairest job of all; the best of the three by the order above is taken. Where the database
        // has row locks (PostgreSQL) each candidate is locked with SKIP LOCKED, so concurrent claims pass each other
        // instead of queueing on one row (and only a starving job is locked as such: a head locked on every claim would
        // keep a job left to the waiting slot that holds its model from that slot).
        // A slot that holds no model has no hot candidate: no scan for it (with no queued job of the model, that scan
        // reads every queued job's entry to find none).
        // The row to update is the one picked, by its primary key. PostgreSQL's statistics of a queue are often of
        // another moment (a fresh database, or one analyzed while the queue was empty, estimates one queued row), and
        // with "Id = picked AND State = 'queued'" the planner then walked the queued jobs' index with a filter on the id
        // instead of reading the primary key (docs/benchmarks.md, issue 18). Where the candidates are locked (FOR UPDATE
        // SKIP LOCKED locks a row's latest version and checks it is still queued, or leaves it out) nothing can change
        // the picked row before this update, so the state is not checked again; elsewhere the update checks it itself
        // (SQLite runs the statement alone on its one writer anyway).
        var stillQueued = skipLocked.Length > 0 ? "" : """ AND "State" = 'queued'""";
        var hot = string.IsNullOrEmpty(hotModel) ? "" : $$"""
            h AS (SELECT "Id", "Priority", "ModelKey", "FairKey", "CreatedAt" FROM jobs
                  WHERE "State" = 'queued' AND "ModelKey" = {4}{{inLane}} ORDER BY "Priority" DESC, "FairKey", "CreatedAt", "Id" LIMIT 1{{skipLocked}}),

            """;
        var sql = $$"""
            WITH s AS (SELECT "Id", "Priority", "ModelKey", "FairKey", "CreatedAt" FROM jobs
                       WHERE "State" = 'queued' AND "CreatedAt" < {3}{{inLane}}
                         AND "Priority" = (SELECT "Priority" FROM jobs WHERE "State" = 'queued'{{inLane}} ORDER BY "Priority" DESC LIMIT 1)
                       ORDER BY "CreatedAt", "Id" LIMIT 1{{skipLocked}}),
                 {{hot}}f AS (SELECT "Id", "Priority", "ModelKey", "FairKey", "CreatedAt" FROM jobs
                       WHERE "State" = 'queued'{{inLane}}{{leaveToOthers}} ORDER BY "Priority" DESC, "FairKey", "CreatedAt", "Id" LIMIT 1{{skipLocked}}),
                 pick AS (SELECT "Id" FROM (SELECT * FROM s{{(hot.Length == 0 ? "" : " UNION ALL SELECT * FROM h")}} UNION ALL SELECT * FROM f) c
                          ORDER BY "Priority" DESC, CASE WHEN "CreatedAt" < {3} THEN 0 ELSE 1 END,
                                   CASE WHEN "ModelKey" = {4} THEN 0 ELSE 1 END, "FairKey", "CreatedAt", "Id" LIMIT 1)
            {{(pg ? ", claimed AS (" : "")}}
            UPDATE jobs SET "State" = 'running', "Attempt" = "Attempt" + 1, "LeaseOwner" = {0}, "LeaseUntil" = {1},
                   "StartedAt" = COALESCE("StartedAt", {2}), "ProgressStep" = 0, "Progress" = 0, "LeaseKeyId" = NULLIF({5}, '')
            WHERE "Id" = (SELECT "Id" FROM pick){{stillQueued}}{{keyValid}}
            {{(pg ? "RETURNING *), hook AS (" + WebhookOutbox.InsertFrom("claimed", first, first + 1, first + 2, 2) + ") SELECT " + Claimed.Columns + " FROM claimed" : "RETURNING " + Claimed.Columns)}}
            """;
        // The statement answers what the lease needs of the job (a raw command: EF's pipeline for a whole entity cost
        // several times the statement itself, inside SQLite's one-writer turn), so nothing is read after it.
        var until = now + lease;
        Func<DbDataReader, Claimed> read = r => Claimed.Read(r, until);
        Claimed? claimed;
        if (pg)
        {
            claimed = (await RawCommands.QueryAsync(db, sql, parameters, read, ct)).FirstOrDefault();
        }
        else if (db.WriterNow is { } writes)
        {
            // SQLite: the claim and its message in one write on the file's writer (one transaction with the writes beside it).
            claimed = await writes.RunAsync(w =>
            {
                var c = w.Query(sql, parameters, read).FirstOrDefault();
                if (c is { Webhook: true })
                {
                    WebhookOutbox.Enqueue(w, c.Job.Id, WebhookEvents.Started, MaxTries, clock);
                }

                return c;
            }, ct);
        }
        else
        {
            using var turn = await provider.WriteTurnAsync(db, ct);
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            claimed = (await RawCommands.QueryAsync(db, sql, parameters, read, ct)).FirstOrDefault();
            if (claimed is { Webhook: true } hooked)
            {
                await WebhookOutbox.EnqueueAsync(db, hooked.Job.Id, WebhookEvents.Started, MaxTries, clock, ct);
            }

            await tx.CommitAsync(ct);
        }

        if (claimed is not { } got)
        {
            return null;
        }

        if (got.Webhook)
        {
            relay.Pulse(); // committed: the started message (when the job's filter has it) is there to send
        }

        // Answered from the claim's own row: the lease is this claim's (the statement checked the key in the same
        // write), and a lease taken is answered, or it would wait out its lease unheld.
        return got.Job;
    }

    /// <summary>A job as a claim leased it: what a lease answers with, from the claim statement itself.</summary>
    public sealed record ClaimedJob(string Id, int Attempt, string TenantId, string AgentId, string Kind, string? ModelKey, string? ModelJson,
        string RequestJson, string? CallerId, DateTime CreatedAt, DateTime LeaseUntil);

    /// <summary>What the claim statement answers: the leased job, and whether its webhook sends <c>started</c>.</summary>
    private sealed record Claimed(ClaimedJob Job, bool Webhook)
    {
        public const string Columns = """
            "Id", "WebhookUrl", "Attempt", "WebhookEvents", "TenantId", "AgentId", "Kind", "ModelKey", "ModelJson", "RequestJson", "CallerId", "CreatedAt"
            """;

        public static Claimed Read(DbDataReader r, DateTime leaseUntil) =>
            new(new ClaimedJob(r.GetString(0), r.GetInt32(2), r.GetString(4), r.GetString(5), r.GetString(6), NullableString(r, 7), NullableString(r, 8),
                    r.GetString(9), NullableString(r, 10), DateTime.SpecifyKind(r.GetDateTime(11), DateTimeKind.Utc), leaseUntil),
                WebhookEvents.Wants(r.IsDBNull(1) ? null : r.GetString(1), r.IsDBNull(3) ? null : r.GetString(3), WebhookEvents.Started));

        private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);
    }

    /// <summary>
    /// This database's write turn (<see cref="IDatabaseProvider.WriteTurnAsync"/>), for a caller that opens its own
    /// transaction around a state change: on SQLite the writers of this process queue for it in order instead of
    /// meeting in SQLite's busy handler, which sleeps and retries (1, 2, 5, 10 … ms) while the lock passes to others.
    /// </summary>
    public ValueTask<IDisposable?> WriteTurnAsync(CancellationToken ct) => provider.WriteTurnAsync(db, ct);

    /// <summary>
    /// Runs one state change of <paramref name="jobId"/> and, in the same transaction (the caller's, when one is open),
    /// queues its webhook message and, for an end without success, gives the job's credits back.
    /// <paramref name="change"/> answers whether the state changed; if not, nothing else happens.
    /// </summary>
    private async Task<bool> ChangeAsync(string jobId, string evt, bool mayHaveWebhook, Func<Task<bool>> change, CancellationToken ct)
    {
        var refund = evt is WebhookEvents.Failed or WebhookEvents.Canceled;
        using var turn = db.Database.CurrentTransaction is null ? await provider.WriteTurnAsync(db, ct) : null;
        if (!mayHaveWebhook && !refund)
        {
            return await change();
        }

        var own = db.Database.CurrentTransaction is null ? await db.Database.BeginTransactionAsync(ct) : null;
        await using (own)
        {
            if (!await change())
            {
                return false;
            }

            var queued = mayHaveWebhook && await WebhookOutbox.EnqueueAsync(db, jobId, evt, MaxTries, clock, ct);
            if (refund)
            {
                await EntitlementService.RefundAsync(db, jobId, ct);
            }

            if (own is not null)
            {
                await own.CommitAsync(ct);
                if (queued)
                {
                    relay.Pulse(); // a caller with its own transaction wakes the relay after its commit
                }
            }

            return true;
        }
    }

    /// <summary>
    /// Extends the lease of the caller's attempt (and records its progress, and where it stands in fetching the model);
    /// false when the attempt is no longer the job's.
    /// </summary>
    public async Task<bool> HeartbeatAsync(string jobId, int attempt, TimeSpan lease, (int Step, int Steps, double Fraction)? progress, CancellationToken ct,
        string? keyId = null, JobDelivery? delivery = null)
    {
        var until = Now + lease;
        var q = Leased(jobId, attempt, keyId);
        // In the file's write queue on SQLite: outside it, under a sustained load the writer's transactions follow each
        // other so closely that a write waiting in SQLite's busy handler could miss every gap, and the lease lapse.
        using var turn = db.Database.CurrentTransaction is null ? await provider.WriteTurnAsync(db, ct) : null;
        // The delivery state lives in the model JSON: written only over the JSON just read. Two beats of one attempt at
        // once (a worker's fetch report and its periodic beat) may each read the same JSON; the one whose write then
        // finds it changed reads again, so neither loses its stage to the other (three tries; the lease is renewed below either way).
        for (var tries = 0; delivery is not null && tries < 3; tries++)
        {
            if (await q.Select(j => j.ModelJson).FirstOrDefaultAsync(ct) is not { } json
                || (delivery.Stage == Contracts.Workers.JobStages.Downloading && JobDelivery.ReadFrom(json) is { Stage: Contracts.Workers.JobStages.Generating } stored && stored.Attempt == attempt))
            {
                // (A beat that left before the model was in place may land after the one that says so: the stage never goes back.)
                break;
            }

            var written = delivery.WriteInto(json);
            if (await q.Where(j => j.ModelJson == json).ExecuteUpdateAsync(u => Renew(u, written), ct) == 1)
            {
                return true;
            }
        }

        return await q.ExecuteUpdateAsync(u => Renew(u, null), ct) == 1;

        void Renew(UpdateSettersBuilder<Job> u, string? model)
        {
            u.SetProperty(j => j.LeaseUntil, until);
            if (progress is { } p)
            {
                u.SetProperty(j => j.ProgressStep, p.Step).SetProperty(j => j.ProgressSteps, p.Steps).SetProperty(j => j.Progress, p.Fraction);
            }

            if (model is not null)
            {
                u.SetProperty(j => j.ModelJson, model);
            }
        }
    }

    /// <summary>
    /// Keeps the latest live preview of the caller's attempt (replacing the one before) and marks the job with its step,
    /// so the task's event stream shows that there is a new one. False when the attempt is no longer the caller's.
    /// </summary>
    public async Task<bool> SavePreviewAsync(string jobId, int attempt, int step, byte[] png, string? keyId, CancellationToken ct)
    {
        var now = Now;
        using var turn = await provider.WriteTurnAsync(db, ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var tenant = await Leased(jobId, attempt, keyId).Select(j => j.TenantId).FirstOrDefaultAsync(ct);
        if (tenant is null)
        {
            return false;
        }

        var updated = await db.JobPreviews.IgnoreQueryFilters().Where(p => p.JobId == jobId)
            .ExecuteUpdateAsync(u => u.SetProperty(p => p.Png, png).SetProperty(p => p.Step, step).SetProperty(p => p.Attempt, attempt).SetProperty(p => p.UpdatedAt, now), ct);
        if (updated == 0)
        {
            db.JobPreviews.Add(new JobPreview { JobId = jobId, TenantId = tenant, Attempt = attempt, Step = step, Png = png, UpdatedAt = now });
            await db.SaveChangesAsync(ct);
            db.ChangeTracker.Clear();
        }

        await Leased(jobId, attempt, keyId).ExecuteUpdateAsync(u => u.SetProperty(j => j.PreviewStep, step), ct);
        await tx.CommitAsync(ct);
        return true;
    }

    /// <summary>
    /// The running job's current attempt, held by <paramref name="keyId"/> when one is named (a worker's call): the
    /// fence that keeps a stale attempt, or another worker key, from changing it.
    /// </summary>
    private IQueryable<Job> Leased(string jobId, int attempt, string? keyId)
    {
        var q = db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.Attempt == attempt && j.State == JobStates.Running);
        return keyId is null ? q : q.Where(j => j.LeaseKeyId == keyId);
    }

    /// <summary>Finishes the caller's attempt; false (nothing changes) for a stale attempt, another key's lease or a finished job.</summary>
    /// <param name="mayHaveWebhook">False when the caller knows the job has no webhook (it saves the outbox statement).</param>
    /// <param name="whenDone">Where the database chains writes (<see cref="ChainsWrites"/>), writes that go in the completion's own
    /// statement, each a data-modifying step that must write nothing unless the state changed (<c>… WHERE </c>
    /// <see cref="StateChanged"/>), with its own parameters from <c>{0}</c>.</param>
    public async Task<bool> CompleteAsync(string jobId, int attempt, string resultJson, TimeSpan retention, CancellationToken ct, bool mayHaveWebhook = true,
        string? keyId = null, IReadOnlyList<(string Sql, object?[] Parameters)>? whenDone = null)
    {
        if (whenDone is { Count: > 0 } && !provider.ChainsWrites)
        {
            throw new InvalidOperationException("writes that go in the completion's statement need a database that chains writes");
        }

        if (db.WriterNow is { } writes)
        {
            // SQLite: the state change and its message in one write on the file's writer.
            var (changed, queued) = await writes.RunAsync(w => Complete(w, jobId, attempt, resultJson, retention, mayHaveWebhook, keyId), ct);
            if (queued)
            {
                relay.Pulse(); // committed: the message is there to send
            }

            return changed;
        }

        var (update, parameters) = Completion(jobId, attempt, resultJson, retention, keyId);

        if (!provider.ChainsWrites)
        {
            return await ChangeAsync(jobId, WebhookEvents.Completed, mayHaveWebhook, async () => await RawCommands.ExecuteAsync(db, update, parameters, ct) == 1, ct);
        }

        // PostgreSQL: the state change and its message in one statement, so the tenant's counter row (which the jobs
        // trigger updates on every end) is locked for that statement and its commit only, not across round trips while
        // the rest of a transaction is sent; without a caller's transaction, it commits on its own.
        var all = new List<object?>(parameters);
        if (mayHaveWebhook)
        {
            all.AddRange([Ids.New("msg", clock), WebhookEvents.Completed, MaxTries]);
        }

        var steps = new StringBuilder();
        for (var i = 0; i < (whenDone?.Count ?? 0); i++)
        {
            var (sql, values) = whenDone![i];
            steps.Append(CultureInfo.InvariantCulture, $", w{i} AS ({RawCommands.Shifted(sql, all.Count)})");
            all.AddRange(values);
        }

        var chained = $$"""
            WITH done AS ({{update}} RETURNING *){{(mayHaveWebhook ? ", hook AS (" + WebhookOutbox.InsertFrom("done", 6, 7, 8, 1) + ")" : "")}}{{steps}}
            SELECT "WebhookUrl" FROM done
            """;
        var rows = await RawCommands.QueryAsync(db, chained, all, r => r.IsDBNull(0) ? null : r.GetString(0), ct);
        if (rows.Count == 1 && rows[0] is not null && db.Database.CurrentTransaction is null)
        {
            relay.Pulse(); // committed: the message (when the job's filter has it) is there to send
        }

        return rows.Count == 1;
    }

    /// <summary>
    /// The completion as one raw statement (the fence of <see cref="Leased"/>, written out): EF's ExecuteUpdate spent most
    /// of this step's time extracting its parameters, inside SQLite's one-writer turn.
    /// </summary>
    private (string Sql, object?[] Parameters) Completion(string jobId, int attempt, string resultJson, TimeSpan retention, string? keyId)
    {
        var now = Now;
        var update = $$"""
            UPDATE jobs SET "State" = '{{JobStates.Succeeded}}', "ResultJson" = {0}, "FinishedAt" = {1}, "LeaseOwner" = NULL, "Progress" = 1.0, "ResultExpiresAt" = {2}
            WHERE "Id" = {3} AND "Attempt" = {4} AND "State" = '{{JobStates.Running}}'{{(keyId is null ? "" : """ AND "LeaseKeyId" = {5}""")}}
            """;
        return (update, [resultJson, now, now + retention, jobId, attempt, keyId]);
    }

    /// <summary>
    /// The completion as part of a write on SQLite's writer (<see cref="AtelierDb.Writes"/>), with its message when the
    /// job asked for one: whether the state changed, and whether a message was queued (the caller wakes the relay once
    /// the write is answered, that is, committed).
    /// </summary>
    public (bool Changed, bool Queued) Complete(Data.Sqlite.IRawWriter w, string jobId, int attempt, string resultJson, TimeSpan retention, bool mayHaveWebhook,
        string? keyId)
    {
        var (update, parameters) = Completion(jobId, attempt, resultJson, retention, keyId);
        if (w.Execute(update, parameters) != 1)
        {
            return (false, false);
        }

        return (true, mayHaveWebhook && WebhookOutbox.Enqueue(w, jobId, WebhookEvents.Completed, MaxTries, clock));
    }

    /// <summary>Ends the caller's attempt as <paramref name="state"/> (failed, or canceled when it stopped on request).</summary>
    public async Task<bool> FailAsync(string jobId, int attempt, string state, string errorCode, string errorMessage, TimeSpan retention, CancellationToken ct,
        string? keyId = null)
    {
        var now = Now;
        return await ChangeAsync(jobId, WebhookEvents.OfFinalState(state)!, true, async () =>
            await Leased(jobId, attempt, keyId)
                .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, state).SetProperty(j => j.ErrorCode, errorCode)
                    .SetProperty(j => j.ErrorMessage, errorMessage).SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null)
                    .SetProperty(j => j.ResultExpiresAt, now + retention), ct) == 1, ct);
    }

    /// <summary>Cancels a job that is still queued (false when it is not); a running one is left to <see cref="RequestStopAsync"/>.</summary>
    public async Task<bool> CancelQueuedAsync(string jobId, TimeSpan retention, CancellationToken ct)
    {
        var now = Now;
        return await ChangeAsync(jobId, WebhookEvents.Canceled, true, async () =>
            await db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.State == JobStates.Queued)
                .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, JobStates.Canceled).SetProperty(j => j.FinishedAt, now)
                    .SetProperty(j => j.CancelRequested, true).SetProperty(j => j.CancelRequestedAt, now)
                    .SetProperty(j => j.ResultExpiresAt, now + retention), ct) == 1, ct);
    }

    /// <summary>Flags a running job for its worker to stop (told with its next heartbeat).</summary>
    public async Task RequestStopAsync(string jobId, CancellationToken ct)
    {
        var now = Now;
        using var turn = db.Database.CurrentTransaction is null ? await provider.WriteTurnAsync(db, ct) : null;
        await db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.State == JobStates.Running && !j.CancelRequested)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.CancelRequested, true).SetProperty(j => j.CancelRequestedAt, now), ct);
    }

    /// <summary>
    /// Puts jobs whose lease expired back in the queue, or fails them when their attempts are used up; aborts running
    /// jobs that were asked to stop longer than <paramref name="cancelGrace"/> ago; forgets results past their
    /// retention. Returns the ids of the jobs that ended here, and how many went back to the queue.
    /// </summary>
    public async Task<(int Requeued, IReadOnlyList<string> Ended)> RescueExpiredAsync(TimeSpan cancelGrace, CancellationToken ct)
    {
        var now = Now;
        var graceStart = now - cancelGrace;
        var ended = new List<string>();
        var jobs = db.Jobs.IgnoreQueryFilters();

        // Jobs that end here end one at a time, each with its webhook message in its own transaction.
        var aborting = await jobs.Where(j => j.State == JobStates.Running && j.CancelRequested && j.CancelRequestedAt < graceStart).Select(j => j.Id).ToListAsync(ct);
        foreach (var id in aborting)
        {
            if (await ChangeAsync(id, WebhookEvents.Canceled, true, async () => await jobs.Where(j => j.Id == id && j.State == JobStates.Running)
                    .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, JobStates.Aborted).SetProperty(j => j.ErrorCode, "cancel_deadline")
                        .SetProperty(j => j.ErrorMessage, $"the worker did not stop within {cancelGrace.TotalSeconds:0} s of the cancellation")
                        .SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null), ct) == 1, ct))
            {
                ended.Add(id);
            }
        }

        int requeued;
        using (db.Database.CurrentTransaction is null ? await provider.WriteTurnAsync(db, ct) : null)
        {
            requeued = await jobs.Where(j => j.State == JobStates.Running && j.LeaseUntil < now && j.Attempt < j.MaxAttempts)
                .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, JobStates.Queued).SetProperty(j => j.LeaseOwner, (string?)null).SetProperty(j => j.LeaseUntil, (DateTime?)null), ct);
        }

        var exhausted = await jobs.Where(j => j.State == JobStates.Running && j.LeaseUntil < now && j.Attempt >= j.MaxAttempts).Select(j => j.Id).ToListAsync(ct);
        foreach (var id in exhausted)
        {
            if (await ChangeAsync(id, WebhookEvents.Failed, true, async () => await jobs.Where(j => j.Id == id && j.State == JobStates.Running && j.LeaseUntil < now)
                    .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, JobStates.Failed).SetProperty(j => j.ErrorCode, "lease_expired")
                        .SetProperty(j => j.ErrorMessage, "the worker stopped renewing its lease and the attempts are used up")
                        .SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null), ct) == 1, ct))
            {
                ended.Add(id);
            }
        }

        await jobs.Where(j => j.ResultExpiresAt < now && j.ResultJson != null)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.ResultJson, (string?)null), ct);
        return (requeued, ended);
    }
}
