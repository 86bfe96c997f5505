namespace Atelier.Core.Common;

/// <summary>
/// Wakes one background loop early (a queued download, a queued async invocation) on this replica; other replicas
/// find the work on their next poll. Each loop gets its own subclass, so each is a distinct service.
/// </summary>
public abstract class WakeSignal : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Wake()
    {
        if (_signal.CurrentCount == 0)
        {
            try
            {
                _signal.Release();
            }
            catch (SemaphoreFullException)
            {
                // already awake
            }
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _signal.Dispose();
        }
    }
}
