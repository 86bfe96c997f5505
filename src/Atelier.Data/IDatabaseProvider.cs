using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Data;

/// <summary>
/// One database backend, chosen by <see cref="Name"/> from configuration. Besides registering its context, a provider
/// owns what differs between databases: row locks, statements that write two tables at once, notifications across
/// replicas, and named locks between replicas. Core asks for these; it never branches on which database it runs on.
/// </summary>
public interface IDatabaseProvider
{
    string Name { get; }

    /// <summary>Registers the provider's context; its settings are read from <see cref="DatabaseOptions"/> when it is first made.</summary>
    void Register(IServiceCollection services);

    /// <summary>Checks at start what the provider promises (SQLite: WAL and the busy timeout).</summary>
    Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct);

    /// <summary>
    /// Appended to a <c>SELECT … LIMIT n</c> that picks rows an update will take: PostgreSQL locks them and passes over
    /// rows another transaction holds (so concurrent claims do not queue on one row); empty where one writer excludes all others.
    /// It must be an exclusive row lock (<c>FOR UPDATE</c>): the claim leaves out its state check where it is set, since no
    /// other transaction can change a row it locked.
    /// </summary>
    string SkipLocked { get; }

    /// <summary>
    /// A condition on <c>jobs</c> that its agent has no computing unit (the shared workers' jobs). PostgreSQL reads the
    /// units once (an array) so the claim's index scan keeps its order and stops at the first row; as a <c>NOT EXISTS</c>
    /// it planned a hash anti-join over every queued job and a sort. SQLite looks the unit up per row, in order.
    /// </summary>
    string AgentHasNoUnit { get; }

    /// <summary>
    /// Whether one statement may change two tables (a data-modifying <c>WITH</c>): then a claim writes its outbox message
    /// in the same statement; otherwise in the same transaction.
    /// </summary>
    bool ChainsWrites { get; }

    /// <summary>
    /// Locks the rows <paramref name="rows"/> selects (<c>SELECT … FROM table WHERE …</c>, in a stable order) until the
    /// transaction ends. Where the database has one writer at a time (SQLite), the write transaction is the lock and
    /// this does nothing.
    /// </summary>
    Task LockRowsAsync(AtelierDb db, FormattableString rows, CancellationToken ct);

    /// <summary>Tells every replica listening on <paramref name="channel"/>; does nothing where the database has no notifications.</summary>
    Task NotifyAsync(AtelierDb db, string channel, string payload, CancellationToken ct);

    /// <summary>
    /// Sends <paramref name="notes"/> (channel, payload) in one transaction of their own, which writes nothing else and so
    /// need not wait for its commit to reach the disk (a notification is not kept across a crash anyway). Called outside
    /// any transaction of <paramref name="db"/>; does nothing where the database has no notifications.
    /// </summary>
    Task NotifyManyAsync(AtelierDb db, IReadOnlyList<(string Channel, string Payload)> notes, CancellationToken ct);

    /// <summary>Whether <see cref="ListenAsync"/> can hear other replicas.</summary>
    bool Notifies { get; }

    /// <summary>
    /// Listens on <paramref name="channels"/> over its own connection until <paramref name="ct"/> ends, calling
    /// <paramref name="received"/> with each channel and payload, and <paramref name="listening"/> once the listen is in place.
    /// Throws when the connection is lost (the caller reconnects). Returns at once where <see cref="Notifies"/> is false.
    /// </summary>
    Task ListenAsync(DatabaseOptions options, IReadOnlyList<string> channels, Action<string, string> received, Action listening, CancellationToken ct);

    /// <summary>
    /// Tries once to take the lock <paramref name="name"/>: the held lock, or null when another holder has it.
    /// PostgreSQL: a session-level advisory lock (<c>pg_try_advisory_lock</c>, key <see cref="DatabaseLocks.AdvisoryKey"/>)
    /// on a connection of its own, outside the pool, open for as long as the lock is held: a lost connection is a lost
    /// lock, and a process that dies loses its locks with its connections. SQLite (one server process per database
    /// file): an exclusive OS lock (<c>flock</c>) on the file <see cref="DatabaseLocks.LockFile"/> beside the database,
    /// which the OS drops when the process dies, and which another process (a test, <c>flock(1)</c>) can hold too.
    /// </summary>
    Task<IDatabaseLock?> TryLockAsync(DatabaseOptions options, string name, CancellationToken ct);

    /// <summary>
    /// Waits for this process's turn to write, where the database lets one writer in at a time (SQLite): the hot writes
    /// (queue, claim, job state changes) take turns in order here instead of meeting on the database's lock, where a
    /// waiting writer sleeps and retries (tens of milliseconds once a few queue up). Dispose the answer once the write
    /// is committed. Null where writers do not exclude each other (PostgreSQL). Take it before a transaction, never inside one.
    /// </summary>
    ValueTask<IDisposable?> WriteTurnAsync(AtelierDb db, CancellationToken ct);
}
