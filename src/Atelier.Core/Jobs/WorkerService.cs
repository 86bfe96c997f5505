using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Core.Common;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Data.Entities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>Configuration section <c>Atelier:Jobs</c>.</summary>
public sealed class JobsOptions
{
    public const string Section = "Atelier:Jobs";

    /// <summary>How long a lease lasts without a heartbeat.</summary>
    public int LeaseSeconds { get; set; } = 30;

    /// <summary>How often expired leases are looked for.</summary>
    public int RescueIntervalSeconds { get; set; } = 5;

    /// <summary>The longest a worker's lease request waits for a job.</summary>
    public int MaxLeaseWaitSeconds { get; set; } = 30;
}

/// <summary>Wakes waiting lease requests when a job is queued (in process; other replicas find it on their next try).</summary>
public sealed class JobSignal : IDisposable
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        Task pulse;
        lock (_gate)
        {
            pulse = _next.Task;
        }

        return pulse.WaitAsync(timeout, ct).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
    }

    public void Pulse()
    {
        TaskCompletionSource fired;
        lock (_gate)
        {
            fired = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        fired.TrySetResult();
    }

    public void Dispose() => Pulse();
}

public sealed record LeasedJob(string Id, int Attempt, string TenantId, string AgentId, JsonElement Request, DateTime LeaseUntil);

public sealed record WorkerKeyDto(string Id, string Secret);

/// <summary>The worker side of the queue: lease (long-poll), heartbeat, complete, fail; and the platform's worker keys.</summary>
public sealed class WorkerService(AtelierDb db, JobQueue queue, JobSignal signal, TimeProvider clock, RequestContext ctx, IOptions<JobsOptions> options)
{
    private TimeSpan Lease => TimeSpan.FromSeconds(options.Value.LeaseSeconds);

    public async Task<WorkerKeyDto> IssueKeyAsync(CancellationToken ct)
    {
        var secret = Secrets.Issue(Secrets.WorkerKeyPrefix);
        var key = new PlatformKey
        {
            Id = Ids.New("wk", clock), Scope = "worker", SecretHash = Secrets.Hash(secret), DisplayPrefix = Secrets.DisplayPrefix(secret),
            CreatedAt = clock.GetUtcNow().UtcDateTime,
        };
        db.PlatformKeys.Add(key);
        Audit.Record(db, ctx, clock, "worker_key.issue", "worker_key", key.Id, null);
        await db.SaveChangesAsync(ct);
        return new WorkerKeyDto(key.Id, secret);
    }

    /// <summary>Leases the next job, waiting up to <paramref name="waitSeconds"/> for one to be queued; null when none came.</summary>
    public async Task<LeasedJob?> LeaseAsync(string workerId, int waitSeconds, CancellationToken ct)
    {
        var wait = TimeSpan.FromSeconds(Math.Clamp(waitSeconds, 0, options.Value.MaxLeaseWaitSeconds));
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            // Take the signal before looking, so that a job queued in between is not missed.
            var woken = signal.WaitAsync(deadline - DateTime.UtcNow > TimeSpan.Zero ? deadline - DateTime.UtcNow : TimeSpan.Zero, ct);
            var job = await queue.ClaimAsync(workerId, Lease, ct);
            if (job is not null)
            {
                using var request = JsonDocument.Parse(job.RequestJson);
                return new LeasedJob(job.Id, job.Attempt, job.TenantId, job.AgentId, request.RootElement.Clone(), job.LeaseUntil!.Value);
            }

            if (DateTime.UtcNow >= deadline)
            {
                return null;
            }

            await woken;
        }
    }

    public async Task<(DateTime LeaseUntil, bool CancelRequested)> HeartbeatAsync(string jobId, int attempt, CancellationToken ct)
    {
        if (!await queue.HeartbeatAsync(jobId, attempt, Lease, ct))
        {
            throw Stale(jobId, attempt);
        }

        var cancel = await db.Jobs.IgnoreQueryFilters().AnyAsync(j => j.Id == jobId && j.CancelRequested, ct);
        return (clock.GetUtcNow().UtcDateTime + Lease, cancel);
    }

    public async Task CompleteAsync(string jobId, int attempt, JsonElement result, CancellationToken ct)
    {
        if (!await queue.CompleteAsync(jobId, attempt, result.GetRawText(), ct))
        {
            throw Stale(jobId, attempt);
        }
    }

    public async Task FailAsync(string jobId, int attempt, string? errorCode, string? errorMessage, CancellationToken ct)
    {
        var code = errorCode is not null && ErrorCatalog.All.Any(c => c.Code == errorCode) ? errorCode : ErrorCatalog.b_agent_unknownexception.Code;
        if (!await queue.FailAsync(jobId, attempt, code, Validate.Optional(errorMessage, "errorMessage", 4000) ?? "", ct))
        {
            throw Stale(jobId, attempt);
        }
    }

    /// <summary>A late answer from an attempt that is no longer the job's (its lease expired and another took it, or the job ended).</summary>
    private static AtelierException Stale(string jobId, int attempt) =>
        new(ErrorCatalog.p_common_inputinvalid, new Dictionary<string, string> { ["Input"] = $"attempt: {attempt} is not the current lease of job {jobId}" },
            status: 409, errCode: "stale_attempt");
}

/// <summary>Puts jobs whose lease expired back in the queue (or fails them when attempts are used up), every few seconds.</summary>
public sealed partial class JobRescuer(IServiceScopeFactory scopes, JobSignal signal, TimeProvider clock, IOptions<JobsOptions> options, ILogger<JobRescuer> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.RescueIntervalSeconds)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                using var scope = scopes.CreateScope();
                var (requeued, failed) = await scope.ServiceProvider.GetRequiredService<JobQueue>().RescueExpiredAsync(stoppingToken);
                if (requeued + failed > 0)
                {
                    LogRescued(logger, requeued, failed);
                    signal.Pulse();
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e);
            }
        }
    }

    [LoggerMessage(4000, LogLevel.Warning, "Expired leases: {Requeued} jobs queued again, {Failed} failed for good")]
    private static partial void LogRescued(ILogger logger, int requeued, int failed);

    [LoggerMessage(4001, LogLevel.Error, "Lease rescue failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
