using Atelier.Data;

namespace Atelier.Core.Jobs;

/// <summary>Tells this replica and (where the database notifies, as PostgreSQL's <c>NOTIFY</c>) every other that a job was queued or changed.</summary>
public sealed class JobNotifier(JobSignal signal, JobWatch watch, IDatabaseProvider provider)
{
    public const string QueuedChannel = "atelier_jobs";
    public const string ChangedChannel = "atelier_job_changed";

    /// <summary>A job of <paramref name="agentId"/> needing <paramref name="modelKey"/> was queued: one waiting slot is woken
    /// on this replica and, through the payload <c>origin agent [model]</c>, one on every other. <paramref name="sent"/>:
    /// the write that queued it sent that notification itself (<see cref="JobQueue.NotifiesItself"/>).</summary>
    public async Task QueuedAsync(AtelierDb db, string agentId, string? modelKey, CancellationToken ct, bool sent = false)
    {
        signal.Pulse(agentId, modelKey);
        if (!sent)
        {
            await provider.NotifyAsync(db, QueuedChannel, modelKey is null ? $"{signal.Origin} {agentId}" : $"{signal.Origin} {agentId} {modelKey}", ct);
        }
    }

    /// <summary>Reads a <see cref="QueuedChannel"/> payload back (ids and keys hold no spaces); null for one that is not in this form.</summary>
    public static (string Origin, string Agent, string? Model)? ParseQueued(string payload)
    {
        var parts = payload.Split(' ');
        return parts.Length switch
        {
            2 => (parts[0], parts[1], null),
            3 => (parts[0], parts[1], parts[2]),
            _ => null,
        };
    }

    /// <summary>The job changed: its watchers here are woken, and through <see cref="ChangedChannel"/> those of every other
    /// replica, unless the write that changed it sent that itself (<paramref name="sent"/>, <see cref="JobQueue.NotifiesItself"/>).</summary>
    public async Task ChangedAsync(AtelierDb db, string jobId, CancellationToken ct, bool sent = false)
    {
        watch.Notify(jobId);
        if (!sent)
        {
            await provider.NotifyAsync(db, ChangedChannel, jobId, ct);
        }
    }
}
