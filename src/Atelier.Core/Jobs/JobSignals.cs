using System.Collections.Concurrent;
using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Atelier.Core.Jobs;

/// <summary>Wakes waiting lease requests when a job is queued: in process here, across replicas through <see cref="JobListener"/>.</summary>
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

/// <summary>Tells this replica and (where the database notifies, as PostgreSQL's <c>NOTIFY</c>) every other that a job was queued or changed.</summary>
public sealed class JobNotifier(JobSignal signal, JobWatch watch, IDatabaseProvider provider)
{
    public const string QueuedChannel = "atelier_jobs";
    public const string ChangedChannel = "atelier_job_changed";

    public async Task QueuedAsync(AtelierDb db, CancellationToken ct)
    {
        signal.Pulse();
        await provider.NotifyAsync(db, QueuedChannel, "", ct);
    }

    public async Task ChangedAsync(AtelierDb db, string jobId, CancellationToken ct)
    {
        watch.Notify(jobId);
        await provider.NotifyAsync(db, ChangedChannel, jobId, ct);
    }
}

/// <summary>
/// Where the database notifies (PostgreSQL), listens for jobs queued and changed on any replica over one connection,
/// and turns each notification into the in-process signal, so a waiting worker is woken at once wherever the job was
/// submitted. Reconnects after a lost connection, and then wakes everyone once (a notification may have been missed).
/// </summary>
public sealed partial class JobListener(DatabaseOptions options, IDatabaseProvider provider, JobSignal signal, JobWatch watch, ILogger<JobListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!provider.Notifies)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await provider.ListenAsync(options, [JobNotifier.QueuedChannel, JobNotifier.ChangedChannel], (channel, payload) =>
                {
                    if (channel == JobNotifier.QueuedChannel)
                    {
                        signal.Pulse();
                    }
                    else
                    {
                        watch.Notify(payload);
                    }
                }, signal.Pulse, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogLost(logger, e);
                // A reconnect pause in real time: it waits on the network, not on anything a clock in a test decides.
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    [LoggerMessage(4010, LogLevel.Warning, "The job notification listener lost its connection; reconnecting")]
    private static partial void LogLost(ILogger logger, Exception exception);
}
