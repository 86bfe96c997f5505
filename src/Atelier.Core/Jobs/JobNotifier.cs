using System.Globalization;
using System.Threading.Channels;
using Atelier.Data;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Atelier.Core.Jobs;

/// <summary>
/// Tells this replica and (where the database notifies, as PostgreSQL's <c>NOTIFY</c>) every other that a job was queued
/// or changed.
/// <para>
/// A write that has committed hands its notification here and goes on; one transaction of this replica's own then
/// sends every notification handed over since the last one went (<see cref="IDatabaseProvider.NotifyManyAsync"/>), and
/// the next starts as soon as that one is answered, so under load they gather and when idle each goes at once. A
/// notification was once sent by the write's own transaction, but PostgreSQL holds one lock for the whole database
/// from a notifying transaction's commit until that commit is on disk, so every submit and every completion waited for
/// the others' disk flushes in turn (the queue's bench: 318 jobs/s with it, 487 with no notification at all). Several
/// jobs queued for the same agent and model in one transaction go as one notification with their count (PostgreSQL
/// delivers identical payloads of one transaction once), and the other replica wakes that many slots.
/// </para>
/// <para>
/// A notification lost (this process ends before it goes, or the database refuses it) leaves a slot waiting on another
/// replica until its next look at the queue (<c>Atelier:Jobs:LeaseRecheckSeconds</c>), and a watcher there until its
/// own next read, as a lost listening connection does. A caller inside a transaction of its own still sends in that
/// transaction (delivered at its commit), so nothing is announced that might not commit; there identical payloads are
/// not counted (no caller queues two jobs in one transaction).
/// </para>
/// </summary>
public sealed partial class JobNotifier(JobSignal signal, JobWatch watch, IDatabaseProvider provider, IServiceScopeFactory scopes, ILogger<JobNotifier> logger)
    : BackgroundService
{
    public const string QueuedChannel = "atelier_jobs";
    public const string ChangedChannel = "atelier_job_changed";

    /// <summary>At most this many notifications wait to go; beyond it, while the database does not answer, new ones are dropped.</summary>
    public const int MaxPending = 50_000;

    /// <summary>The most slots one queued notification wakes (its count).</summary>
    public const int MaxCount = 1_000;

    private readonly Lock _gate = new();
    private Dictionary<(string Channel, string Payload), int> _pending = [];
    private readonly Channel<bool> _ready = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private int _dropped;

    /// <summary>A job of <paramref name="agentId"/> needing <paramref name="modelKey"/> was queued: one waiting slot is woken
    /// on this replica and, through the payload <c>origin agent [model] [#count]</c>, one on every other.</summary>
    public async Task QueuedAsync(AtelierDb db, string agentId, string? modelKey, CancellationToken ct)
    {
        signal.Pulse(agentId, modelKey);
        await SendAsync(db, QueuedChannel, modelKey is null ? $"{signal.Origin} {agentId}" : $"{signal.Origin} {agentId} {modelKey}", ct);
    }

    /// <summary>
    /// Reads a <see cref="QueuedChannel"/> payload back (ids and keys hold no spaces, and no model key starts with
    /// <c>#</c>): the origin, the agent, the model, and how many jobs it stands for; null for one that is not in this form.
    /// </summary>
    public static (string Origin, string Agent, string? Model, int Count)? ParseQueued(string payload)
    {
        var parts = payload.Split(' ');
        var count = 1;
        if (parts.Length is 3 or 4 && parts[^1] is ['#', .. var n])
        {
            if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out count) || count < 1)
            {
                return null;
            }

            parts = parts[..^1];
            count = Math.Min(count, MaxCount);
        }

        return parts.Length switch
        {
            2 => (parts[0], parts[1], null, count),
            3 => (parts[0], parts[1], parts[2], count),
            _ => null,
        };
    }

    /// <summary>The job changed: its watchers here are woken, and through <see cref="ChangedChannel"/> those of every other replica.</summary>
    public async Task ChangedAsync(AtelierDb db, string jobId, CancellationToken ct)
    {
        watch.Notify(jobId);
        await SendAsync(db, ChangedChannel, jobId, ct);
    }

    private async Task SendAsync(AtelierDb db, string channel, string payload, CancellationToken ct)
    {
        if (!provider.Notifies)
        {
            return;
        }

        if (db.Database.CurrentTransaction is not null)
        {
            await provider.NotifyAsync(db, channel, payload, ct);
            return;
        }

        lock (_gate)
        {
            if (_pending.TryGetValue((channel, payload), out var count))
            {
                _pending[(channel, payload)] = count + 1;
            }
            else if (_pending.Count < MaxPending)
            {
                _pending[(channel, payload)] = 1;
            }
            else
            {
                _dropped++;
                return;
            }
        }

        _ready.Writer.TryWrite(true);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!provider.Notifies)
        {
            return;
        }

        try
        {
            while (await _ready.Reader.WaitToReadAsync(stoppingToken))
            {
                _ready.Reader.TryRead(out _);
                Dictionary<(string Channel, string Payload), int> batch;
                int dropped;
                lock (_gate)
                {
                    (batch, _pending) = (_pending, []);
                    (dropped, _dropped) = (_dropped, 0);
                }

                if (dropped > 0)
                {
                    LogDropped(logger, dropped);
                }

                if (batch.Count == 0)
                {
                    continue;
                }

                // Identical changed notifications are one (a watcher reads the job again); identical queued ones carry their count.
                var notes = batch.Select(e => (e.Key.Channel, e.Key.Channel == QueuedChannel && e.Value > 1
                    ? $"{e.Key.Payload} #{Math.Min(e.Value, MaxCount).ToString(CultureInfo.InvariantCulture)}"
                    : e.Key.Payload)).ToList();
                try
                {
                    await using var scope = scopes.CreateAsyncScope();
                    await provider.NotifyManyAsync(scope.ServiceProvider.GetRequiredService<AtelierDb>(), notes, stoppingToken);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    LogFailed(logger, notes.Count, e);
                }
            }
        }
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            // stopping (however the send in flight ended): what is still pending is left to the other replicas' next looks
        }
    }

    [LoggerMessage(4011, LogLevel.Warning, "{Count} job notifications for the other replicas could not be sent; their waiting workers find the jobs at their next look")]
    private static partial void LogFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(4012, LogLevel.Warning, "{Count} job notifications for the other replicas were dropped: too many were waiting to be sent")]
    private static partial void LogDropped(ILogger logger, int count);
}
