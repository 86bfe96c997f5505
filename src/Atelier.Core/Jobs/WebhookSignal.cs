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

    /// <summary>A message was queued: the relay's next take knows something is due (<see cref="TakeQueued"/>), and it wakes.</summary>
    public void Pulse()
    {
        Volatile.Write(ref _queued, 1);
        Wake();
    }

    /// <summary>Whether a message was queued since the last call (and forgets it).</summary>
    public bool TakeQueued() => Interlocked.Exchange(ref _queued, 0) == 1;

    private int _queued;

    /// <summary>Wakes the relay without saying a message was queued (a send ended and its slot is free).</summary>
    public void Wake()
    {
        TaskCompletionSource fired;
        lock (_gate)
        {
            fired = _next;
            _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        fired.TrySetResult();
    }

    public void Dispose() => Wake();
}
