namespace Atelier.Data;

/// <summary>
/// A named lock this process holds (<see cref="IDatabaseProvider.TryLockAsync"/>) until it is disposed or lost. It
/// excludes every other holder of the same name: another replica, another request of this one, or an operator.
/// </summary>
public interface IDatabaseLock : IAsyncDisposable
{
    string Name { get; }

    /// <summary>
    /// Whether the lock is still held. On PostgreSQL this asks the lock's own connection: a connection that is gone (the
    /// database restarted, the session was terminated, the network failed) took the lock with it, so a long holder
    /// asks before each stretch of work it does under the lock. A file lock cannot be lost while this process lives.
    /// Throws only <see cref="OperationCanceledException"/> (when <paramref name="ct"/> ends the check).
    /// </summary>
    Task<bool> IsHeldAsync(CancellationToken ct);
}
