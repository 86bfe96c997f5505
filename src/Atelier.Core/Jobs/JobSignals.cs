using Atelier.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Atelier.Core.Jobs;

/// <summary>Wakes waiting lease requests when a job is queued: in process here, across replicas through <see cref="JobListener"/>.</summary>
public sealed class JobSignal(TimeProvider clock) : IDisposable
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

        return pulse.WaitAsync(timeout, clock, ct).ContinueWith(t => t.IsCompletedSuccessfully, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
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

/// <summary>
/// Wakes callers waiting for one job to change (a synchronous txt2img, a progress stream). A caller takes a
/// <see cref="Watch"/> before it looks at the job and waits on it only if what it saw was not final: a change between
/// the look and the wait then ends the wait at once instead of being missed.
/// </summary>
public sealed class JobWatch(TimeProvider clock)
{
    private readonly TimeProvider _clock = clock;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<TaskCompletionSource>> _waiting = new(StringComparer.Ordinal);

    /// <summary>Starts watching a job for its next <see cref="Notify"/>; dispose the watch when done with it.</summary>
    public Change Watch(string jobId)
    {
        var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (!_waiting.TryGetValue(jobId, out var watchers))
            {
                _waiting[jobId] = watchers = [];
            }

            watchers.Add(changed);
        }

        return new Change(this, jobId, changed);
    }

    public void Notify(string jobId)
    {
        List<TaskCompletionSource>? watchers;
        lock (_gate)
        {
            if (!_waiting.Remove(jobId, out watchers))
            {
                return;
            }
        }

        foreach (var changed in watchers)
        {
            changed.TrySetResult();
        }
    }

    private void Forget(string jobId, TaskCompletionSource changed)
    {
        lock (_gate)
        {
            if (_waiting.TryGetValue(jobId, out var watchers) && watchers.Remove(changed) && watchers.Count == 0)
            {
                _waiting.Remove(jobId);
            }
        }
    }

    /// <summary>One caller's watch of one job, from <see cref="Watch"/>.</summary>
    public sealed class Change(JobWatch watch, string jobId, TaskCompletionSource changed) : IDisposable
    {
        /// <summary>Completes when the job was notified since the watch began, or after <paramref name="timeout"/> of the clock.</summary>
        public async Task WaitAsync(TimeSpan timeout, CancellationToken ct)
        {
            try
            {
                await changed.Task.WaitAsync(timeout, watch._clock, ct);
            }
            catch (TimeoutException)
            {
                // The caller looks at the job again either way.
            }
        }

        public void Dispose() => watch.Forget(jobId, changed);
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
