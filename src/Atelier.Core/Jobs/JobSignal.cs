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
