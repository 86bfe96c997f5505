namespace Atelier.Core.Jobs;

/// <summary>Wakes the relay when a message was queued on this replica (others find it by polling): every waiter, one pulse.</summary>
public sealed class WebhookSignal(TimeProvider clock) : IDisposable
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Ends at the next pulse, the timeout or the token, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        Task pulse;
        lock (_gate)
        {
            pulse = _next.Task;
        }

        return pulse.WaitAsync(timeout, clock, ct).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
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
