namespace Atelier.Core.Jobs;

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
