namespace Atelier.Core.Jobs;

/// <summary>Wakes the relay when a message was queued on this replica (others find it by polling).</summary>
public sealed class WebhookSignal(TimeProvider clock) : IDisposable
{
    private readonly JobSignal _signal = new(clock);

    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);

    public void Pulse() => _signal.Pulse();

    public void Dispose() => _signal.Dispose();
}
