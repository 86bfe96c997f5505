using Atelier.Core.Coordination;

namespace Atelier.Core.Agents;

/// <summary>
/// The lock a change of a pool's used capacity holds (<c>pool:{id}</c>, across replicas), so two units never both take
/// its last replicas. Not taken within <c>Atelier:Coordination:LockWaitSeconds</c>: <c>s_common_lockfail</c> (503, Retry-After).
/// </summary>
public sealed class CapacityLocks(Locks locks)
{
    public static string Name(string poolId) => $"pool:{poolId}";

    public async Task<IAsyncDisposable> AcquireAsync(string poolId, CancellationToken ct) => await locks.AcquireAsync(Name(poolId), ct);
}
