using System.Diagnostics;
using Atelier.Contracts.Platform;
using Atelier.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Coordination;

/// <summary>
/// Leader election between server replicas. Every replica tries to take the lock <see cref="LockName"/> once at start
/// (before the background services that follow it start) and then every <see cref="CoordinationOptions.LeaderCheckSeconds"/>;
/// the holder is the leader until its lock is lost (on PostgreSQL: the lock's connection) or it stops (a graceful stop
/// releases the lock at once; a killed process loses it with its connection, and another replica takes it at its next
/// try). Work that must happen once across replicas runs only while <see cref="IsLeader"/> and stops when
/// <see cref="CancellationToken"/> is canceled. With SQLite (one server per database file) that one server leads.
/// </summary>
public sealed partial class Leadership(Locks locks, IOptions<CoordinationOptions> options, TimeProvider clock, ILogger<Leadership> logger) : BackgroundService
{
    /// <summary>The lock the leader holds.</summary>
    public const string LockName = "atelier:leader";

    private static readonly DateTimeOffset ProcessStarted = StartOfProcess();

    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _asking = new(1, 1);
    private IDatabaseLock? _held;
    private CancellationTokenSource _term = Ended();
    private TaskCompletionSource _gained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset? _since;
    private long _count;
    private bool _failing;

    /// <summary>This replica: <c>host:pid:start</c> (the process's start, UTC), the same for the life of the process.</summary>
    public string ReplicaId { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{ProcessStarted:yyyyMMdd'T'HHmmss.fff'Z'}";

    /// <summary>Whether this replica is the leader now.</summary>
    public bool IsLeader
    {
        get
        {
            lock (_gate)
            {
                return _held is not null;
            }
        }
    }

    /// <summary>How many times this replica has become the leader: the current term while it leads, its last one after.</summary>
    public long Term
    {
        get
        {
            lock (_gate)
            {
                return _count;
            }
        }
    }

    /// <summary>Since when this replica leads; null when it does not.</summary>
    public DateTimeOffset? LeaderSince
    {
        get
        {
            lock (_gate)
            {
                return _since;
            }
        }
    }

    /// <summary>Canceled when this replica's current term ends; already canceled when it is not the leader.</summary>
    public CancellationToken CancellationToken
    {
        get
        {
            lock (_gate)
            {
                return _term.Token;
            }
        }
    }

    /// <summary>Completes when this replica is the leader (at once if it is now).</summary>
    public Task WaitForLeadershipAsync(CancellationToken ct)
    {
        lock (_gate)
        {
            return _held is not null ? Task.CompletedTask : _gained.Task.WaitAsync(ct);
        }
    }

    /// <summary>This replica as <c>GET /api/v1/platform/replica</c> shows it.</summary>
    public ReplicaDto Describe()
    {
        lock (_gate)
        {
            return new ReplicaDto(ReplicaId, _held is not null, _count, _since?.UtcDateTime, ProcessStarted.UtcDateTime);
        }
    }

    /// <summary>
    /// Asks the database now, not at the next check, whether this replica still holds the leader lock, and ends its term
    /// at once when it does not. Leader-only work whose effects must not happen twice (the autoscaler: worker processes,
    /// scaling decisions) asks before it acts: between two checks the lock may be gone (its session ended, the database
    /// restarted) and another replica leading already. False when this replica does not lead (any more).
    /// </summary>
    public async Task<bool> ConfirmAsync(CancellationToken ct)
    {
        IDatabaseLock? held;
        lock (_gate)
        {
            held = _held;
        }

        if (held is null)
        {
            return false;
        }

        if (await StillHeldAsync(held, ct))
        {
            return true;
        }

        await EndTermAsync("its lock was lost (its database connection failed or was ended)", held);
        return false;
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // One try now, so that a replica that can lead does, before the leader-only work starts looking.
        await CheckAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Value.LeaderCheckSeconds), clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await CheckAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await EndTermAsync(null);
    }

    /// <summary>One round: the leader checks that its lock is still held; any other replica tries to take it.</summary>
    private async Task CheckAsync(CancellationToken ct)
    {
        try
        {
            IDatabaseLock? held;
            lock (_gate)
            {
                held = _held;
            }

            if (held is not null)
            {
                if (!await StillHeldAsync(held, ct))
                {
                    await EndTermAsync("its lock was lost (its database connection failed or was ended)", held);
                }
            }
            else if (await locks.TryAcquireAsync(LockName, ct) is { } taken)
            {
                BeginTerm(taken);
            }

            _failing = false;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The database is unreachable: a replica that cannot reach it cannot lead; said once until it can again.
            if (!_failing)
            {
                LogCheckFailed(logger, e);
            }

            _failing = true;
        }
    }

    /// <summary>
    /// A check that does not answer within a few seconds counts as a lost lock (the network may be gone). One at a time:
    /// the periodic check and <see cref="ConfirmAsync"/> ask on the lock's one connection.
    /// </summary>
    private async Task<bool> StillHeldAsync(IDatabaseLock held, CancellationToken ct)
    {
        await _asking.WaitAsync(ct);
        try
        {
            return await AskAsync(held, ct);
        }
        finally
        {
            _asking.Release();
        }
    }

    private async Task<bool> AskAsync(IDatabaseLock held, CancellationToken ct)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Max(5, options.Value.LeaderCheckSeconds)), clock);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, bounded.Token);
        try
        {
            return await held.IsHeldAsync(linked.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private void BeginTerm(IDatabaseLock taken)
    {
        TaskCompletionSource gained;
        long term;
        lock (_gate)
        {
            _held = taken;
            term = ++_count;
            _since = clock.GetUtcNow();
            _term = new CancellationTokenSource();
            gained = _gained;
        }

        LogGained(logger, ReplicaId, term);
        gained.TrySetResult();
    }

    /// <param name="reason">Why leadership was lost; null on a graceful stop.</param>
    /// <param name="lost">The lock found lost: the term is ended only if it is still the one held (not a later term's).</param>
    private async Task EndTermAsync(string? reason, IDatabaseLock? lost = null)
    {
        IDatabaseLock? held;
        CancellationTokenSource term;
        long count;
        lock (_gate)
        {
            held = _held;
            if (held is null || (lost is not null && held != lost))
            {
                return;
            }

            _held = null;
            _since = null;
            term = _term;
            count = _count;
            _gained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        if (reason is null)
        {
            LogReleased(logger, ReplicaId, count);
        }
        else
        {
            LogLost(logger, ReplicaId, count, reason);
        }

        // The leader's work is told first, then the lock goes, so another replica starts it only after this one was told to stop.
        try
        {
            await term.CancelAsync();
        }
        finally
        {
            await held.DisposeAsync();
        }
    }

    private static DateTimeOffset StartOfProcess()
    {
        using var self = Process.GetCurrentProcess();
        return self.StartTime.ToUniversalTime();
    }

    private static CancellationTokenSource Ended()
    {
        var ended = new CancellationTokenSource();
        ended.Cancel();
        return ended;
    }

    public override void Dispose()
    {
        _term.Dispose();
        _asking.Dispose();
        base.Dispose();
    }

    [LoggerMessage(3300, LogLevel.Information, "Replica {ReplicaId} is the leader (term {Term})")]
    private static partial void LogGained(ILogger logger, string replicaId, long term);

    [LoggerMessage(3301, LogLevel.Warning, "Replica {ReplicaId} is no longer the leader (term {Term}): {Reason}")]
    private static partial void LogLost(ILogger logger, string replicaId, long term, string reason);

    [LoggerMessage(3302, LogLevel.Information, "Replica {ReplicaId} released the leadership as it stops (term {Term})")]
    private static partial void LogReleased(ILogger logger, string replicaId, long term);

    [LoggerMessage(3303, LogLevel.Warning, "A leader election check failed; this replica does not lead until the database answers")]
    private static partial void LogCheckFailed(ILogger logger, Exception e);
}
