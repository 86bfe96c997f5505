using System.Collections.Concurrent;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Atelier.Core.Jobs;

/// <summary>Wakes waiting lease requests when a job is queued: in process here, across replicas through <see cref="PgJobListener"/>.</summary>
public sealed class JobSignal : IDisposable
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True when a pulse ended the wait, false when the timeout (or the token) did.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        Task pulse;
        lock (_gate)
        {
            pulse = _next.Task;
        }

        return pulse.WaitAsync(timeout, ct).ContinueWith(t => t.IsCompletedSuccessfully, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
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

/// <summary>Wakes callers waiting for one job to change (a synchronous txt2img, a progress stream).</summary>
public sealed class JobWatch
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiting = new();

    /// <summary>Completes when <see cref="Notify"/> names the job, or after <paramref name="timeout"/>, whichever is first.</summary>
    public async Task WaitAsync(string jobId, TimeSpan timeout, CancellationToken ct)
    {
        var tcs = _waiting.GetOrAdd(jobId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await tcs.Task.WaitAsync(timeout, ct);
        }
        catch (TimeoutException)
        {
            // The caller looks at the job again either way.
        }
    }

    public void Notify(string jobId)
    {
        if (_waiting.TryRemove(jobId, out var tcs))
        {
            tcs.TrySetResult();
        }
    }
}

/// <summary>Tells this replica and (on PostgreSQL, by <c>NOTIFY</c>) every other that a job was queued or changed.</summary>
public sealed class JobNotifier(JobSignal signal, JobWatch watch)
{
    public const string QueuedChannel = "atelier_jobs";
    public const string ChangedChannel = "atelier_job_changed";

    public async Task QueuedAsync(AtelierDb db, CancellationToken ct)
    {
        signal.Pulse();
        if (db.Database.IsNpgsql())
        {
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_notify('{QueuedChannel}', '')", ct);
        }
    }

    public async Task ChangedAsync(AtelierDb db, string jobId, CancellationToken ct)
    {
        watch.Notify(jobId);
        if (db.Database.IsNpgsql())
        {
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_notify('{ChangedChannel}', {{0}})", [jobId], ct);
        }
    }
}

/// <summary>
/// On PostgreSQL, holds one connection that <c>LISTEN</c>s for jobs queued and changed on any replica, and turns each
/// notification into the in-process signal, so a waiting worker is woken at once wherever the job was submitted.
/// Reconnects after a lost connection, and then wakes everyone once (a notification may have been missed).
/// </summary>
public sealed partial class PgJobListener(DatabaseOptions options, JobSignal signal, JobWatch watch, ILogger<PgJobListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!string.Equals(options.Provider, "postgres", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var conn = new NpgsqlConnection(options.ConnectionString);
                await conn.OpenAsync(stoppingToken);
                conn.Notification += (_, e) =>
                {
                    if (e.Channel == JobNotifier.QueuedChannel)
                    {
                        signal.Pulse();
                    }
                    else
                    {
                        watch.Notify(e.Payload);
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {JobNotifier.QueuedChannel}; LISTEN {JobNotifier.ChangedChannel}", conn))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }

                signal.Pulse();
                while (!stoppingToken.IsCancellationRequested)
                {
                    await conn.WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogLost(logger, e);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    [LoggerMessage(4010, LogLevel.Warning, "The job notification listener lost its connection; reconnecting")]
    private static partial void LogLost(ILogger logger, Exception exception);
}
