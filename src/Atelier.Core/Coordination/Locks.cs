using Atelier.Contracts.Errors;
using Atelier.Data;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Coordination;

/// <summary>
/// Named locks between server replicas (and between the requests of one replica), through the database provider:
/// PostgreSQL advisory locks, or lock files beside a SQLite database. A name says what the lock guards; docs/replicas.md
/// lists them. Dispose the lock to release it.
/// </summary>
public sealed class Locks(IDatabaseProvider provider, DatabaseOptions database, IOptions<CoordinationOptions> options, TimeProvider clock)
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(25);
    private static readonly TimeSpan LongestPause = TimeSpan.FromMilliseconds(500);

    /// <summary>Tries once: the held lock, or null when another holder has it.</summary>
    public Task<IDatabaseLock?> TryAcquireAsync(string name, CancellationToken ct) => provider.TryLockAsync(database, name, ct);

    /// <summary><see cref="AcquireAsync(string, TimeSpan, CancellationToken)"/> within <see cref="CoordinationOptions.LockWaitSeconds"/>.</summary>
    public Task<IDatabaseLock> AcquireAsync(string name, CancellationToken ct) => AcquireAsync(name, TimeSpan.FromSeconds(options.Value.LockWaitSeconds), ct);

    /// <summary>
    /// Takes the lock, trying again (after 25 ms, doubling up to 500 ms between tries) until <paramref name="bound"/> has
    /// passed; then throws <c>s_common_lockfail</c> (503, <c>Retry-After</c> <see cref="CoordinationOptions.LockRetryAfterSeconds"/>,
    /// <c>errCode</c> <c>lock_busy</c>).
    /// </summary>
    public async Task<IDatabaseLock> AcquireAsync(string name, TimeSpan bound, CancellationToken ct)
    {
        var started = clock.GetTimestamp();
        var pause = FirstPause;
        while (true)
        {
            if (await provider.TryLockAsync(database, name, ct) is { } held)
            {
                return held;
            }

            var left = bound - clock.GetElapsedTime(started);
            if (left <= TimeSpan.Zero)
            {
                throw new AtelierException(ErrorCatalog.s_common_lockfail, errCode: ErrCodes.LockBusy,
                    errMessage: $"the lock {name} was held elsewhere for {bound.TotalSeconds:0.###} s; try again")
                {
                    RetryAfterSeconds = options.Value.LockRetryAfterSeconds,
                };
            }

            await Task.Delay(pause < left ? pause : left, clock, ct);
            pause = pause * 2 < LongestPause ? pause * 2 : LongestPause;
        }
    }
}
