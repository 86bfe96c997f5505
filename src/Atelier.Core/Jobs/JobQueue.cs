using System.Security.Cryptography;
using System.Text;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;

namespace Atelier.Core.Jobs;

/// <summary>
/// The durable job queue in the database (reliability.md §5). A claim is one statement that moves the oldest queued
/// job to running with attempt + 1 and a lease: <c>FOR UPDATE SKIP LOCKED</c> on PostgreSQL, and SQLite's single
/// writer (non-deferred transactions) elsewhere. Heartbeats extend the lease; completion and failure are conditional on
/// the attempt (a fencing token), so a stale worker's late answer changes nothing; expired leases go back to the queue
/// until the attempts run out.
/// </summary>
public sealed class JobQueue(AtelierDb db, TimeProvider clock)
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    private DateTime Now => clock.GetUtcNow().UtcDateTime;

    /// <summary>
    /// Enqueues, or finds the job a client already submitted under the same <see cref="Job.ClientJobId"/>: the same
    /// body gives the existing job back (<c>Created</c> false), another body is <c>b_agent_jobidexisted</c>.
    /// </summary>
    public async Task<(Job Job, bool Created)> EnqueueAsync(string tenantId, string agentId, string? clientJobId, string requestJson,
        string? modelKey, int priority, int maxAttempts, CancellationToken ct)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(requestJson)));
        var job = new Job
        {
            Id = Ids.New("job", clock), TenantId = tenantId, AgentId = agentId, ClientJobId = clientJobId, BodyHash = hash,
            RequestJson = requestJson, ModelKey = modelKey, State = Queued, Priority = priority, MaxAttempts = maxAttempts, CreatedAt = Now,
        };
        db.Jobs.Add(job);
        try
        {
            await db.SaveChangesAsync(ct);
            return (job, true);
        }
        catch (DbUpdateException e) when (clientJobId is not null && DbErrors.IsUniqueViolation(e))
        {
            db.ChangeTracker.Clear();
            var existing = await db.Jobs.IgnoreQueryFilters().AsNoTracking().FirstAsync(j => j.TenantId == tenantId && j.ClientJobId == clientJobId, ct);
            return existing.BodyHash == hash
                ? (existing, false)
                : throw new AtelierException(ErrorCatalog.b_agent_jobidexisted, errCode: "body_differs",
                    errMessage: $"job id {clientJobId} was submitted before with another body");
        }
    }

    /// <summary>Leases the next queued job to <paramref name="workerId"/>, or returns null when there is none.</summary>
    public async Task<Job?> ClaimAsync(string workerId, TimeSpan lease, CancellationToken ct)
    {
        var now = Now;
        var skipLocked = db.Database.IsNpgsql() ? " FOR UPDATE SKIP LOCKED" : "";
        var sql = $$"""
            UPDATE jobs SET "State" = 'running', "Attempt" = "Attempt" + 1, "LeaseOwner" = {0}, "LeaseUntil" = {1},
                   "StartedAt" = COALESCE("StartedAt", {2})
            WHERE "Id" = (SELECT "Id" FROM jobs WHERE "State" = 'queued' ORDER BY "Priority" DESC, "CreatedAt", "Id" LIMIT 1{{skipLocked}})
            RETURNING *
            """;
        var claimed = await db.Jobs.FromSqlRaw(sql, workerId, now + lease, now).IgnoreQueryFilters().AsNoTracking().ToListAsync(ct);
        return claimed.FirstOrDefault();
    }

    /// <summary>Extends the lease of the caller's attempt; false when the attempt is no longer the job's.</summary>
    public async Task<bool> HeartbeatAsync(string jobId, int attempt, TimeSpan lease, CancellationToken ct)
    {
        var until = Now + lease;
        return await db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.Attempt == attempt && j.State == Running)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.LeaseUntil, until), ct) == 1;
    }

    /// <summary>Finishes the caller's attempt; false (nothing changes) for a stale attempt or a finished job.</summary>
    public async Task<bool> CompleteAsync(string jobId, int attempt, string resultJson, CancellationToken ct)
    {
        var now = Now;
        return await db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.Attempt == attempt && j.State == Running)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, Succeeded).SetProperty(j => j.ResultJson, resultJson)
                .SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null), ct) == 1;
    }

    public async Task<bool> FailAsync(string jobId, int attempt, string errorCode, string errorMessage, CancellationToken ct)
    {
        var now = Now;
        return await db.Jobs.IgnoreQueryFilters().Where(j => j.Id == jobId && j.Attempt == attempt && j.State == Running)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, Failed).SetProperty(j => j.ErrorCode, errorCode)
                .SetProperty(j => j.ErrorMessage, errorMessage).SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null), ct) == 1;
    }

    /// <summary>Puts jobs whose lease expired back in the queue, or fails them when their attempts are used up. Returns (requeued, failed).</summary>
    public async Task<(int Requeued, int Failed)> RescueExpiredAsync(CancellationToken ct)
    {
        var now = Now;
        var requeued = await db.Jobs.IgnoreQueryFilters().Where(j => j.State == Running && j.LeaseUntil < now && j.Attempt < j.MaxAttempts)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, Queued).SetProperty(j => j.LeaseOwner, (string?)null).SetProperty(j => j.LeaseUntil, (DateTime?)null), ct);
        var failed = await db.Jobs.IgnoreQueryFilters().Where(j => j.State == Running && j.LeaseUntil < now && j.Attempt >= j.MaxAttempts)
            .ExecuteUpdateAsync(u => u.SetProperty(j => j.State, Failed).SetProperty(j => j.ErrorCode, "lease_expired")
                .SetProperty(j => j.ErrorMessage, "the worker stopped renewing its lease and the attempts are used up")
                .SetProperty(j => j.FinishedAt, now).SetProperty(j => j.LeaseOwner, (string?)null), ct);
        return (requeued, failed);
    }
}
