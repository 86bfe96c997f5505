using Atelier.Data;

namespace Atelier.Core.Jobs;

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
