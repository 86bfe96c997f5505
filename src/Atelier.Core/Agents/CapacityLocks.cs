using System.Collections.Concurrent;

namespace Atelier.Core.Agents;

/// <summary>The lock a change of a pool's used capacity holds, so two units never both take its last replicas.</summary>
public sealed class CapacityLocks
{
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    public static string Name(string poolId) => $"pool:{poolId}";

    public async Task<IAsyncDisposable> AcquireAsync(string poolId, CancellationToken ct)
    {
        var gate = _gates.GetOrAdd(poolId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        return new Held(gate);
    }

    private sealed class Held(SemaphoreSlim gate) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            gate.Release();
            return ValueTask.CompletedTask;
        }
    }
}
