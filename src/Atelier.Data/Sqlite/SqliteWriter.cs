using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Atelier.Data.Sqlite;

/// <summary>
/// What a write running on <see cref="SqliteWriter"/> may do: statements on the writer's connection, inside the batch's
/// transaction (each write in a savepoint of its own, so one that fails takes back its own statements only).
/// </summary>
public interface IRawWriter
{
    /// <summary>Runs <paramref name="sql"/> (EF's <c>{0}</c> placeholders) and answers the rows it changed.</summary>
    int Execute(string sql, IReadOnlyList<object?> parameters);

    /// <summary>Runs <paramref name="sql"/> and reads each row with <paramref name="read"/>.</summary>
    List<T> Query<T>(string sql, IReadOnlyList<object?> parameters, Func<DbDataReader, T> read);
}

/// <summary>
/// The one writer of a SQLite file in this process: a thread of its own with a connection kept open, that takes the
/// writes queued for it in order and commits them together (group commit): one <c>BEGIN IMMEDIATE</c> … <c>COMMIT</c> for
/// every write waiting when the batch starts or arriving while it runs (at most <see cref="MaxBatch"/>), each write in a
/// savepoint of its own, its statements prepared once and kept. A write's caller is answered after the commit that holds
/// it, so nothing is answered before it is durable (the same guarantee as one transaction per write).
/// <para>
/// Before it, SQLite's writers of this process took a turn each (a semaphore), opened a pooled connection, had SQLite
/// parse and plan each statement again, committed alone, and between two turns the next holder waited for a thread of
/// the pool: on the job pipeline the turn was held about 70% of the time and idle between holders another 10%
/// (docs/benchmarks.md, issue 18). The writes that are still EF's (<see cref="LendAsync"/>) take their turn in the same
/// queue, first come first served: the writer commits what it ran, lends the file to that caller, and goes on when it
/// gives it back.
/// </para>
/// <para>
/// The writer's connection makes no checkpoint of its own: a thread beside it copies the write-ahead log into the file
/// (<see cref="Checkpoints"/>), and the writer ends each such pass between two transactions so that SQLite starts the
/// log over (<see cref="FinishCheckpoint"/>).
/// </para>
/// Only for a file: an in-memory database is private to its connection (<see cref="For"/> gives no writer).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001",
    Justification = "Its connection and statements belong to its thread, which disposes them when it ends (the last Use disposed).")]
public sealed class SqliteWriter : IRawWriter
{
    /// <summary>Writes per transaction, at most.</summary>
    public const int MaxBatch = 64;

    /// <summary>Statements kept prepared, at most (the hot writes are a handful of texts; the claim's varies with the slots).</summary>
    private const int MaxStatements = 64;

    private static readonly Dictionary<string, SqliteWriter> Writers = new(StringComparer.Ordinal);
    private static readonly Lock WritersLock = new();

    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;
    private readonly Queue<Item> _queue = new();
    private readonly object _gate = new(); // Monitor.Wait and Pulse: not a System.Threading.Lock
    private PreparedStatements? _statements;
    private SqliteConnection? _connection;
    private int _users;
    private volatile bool _stopping;

    private SqliteWriter(string connectionString, int busyTimeoutMs)
    {
        _connectionString = connectionString;
        _busyTimeoutMs = busyTimeoutMs;
        new Thread(Loop) { IsBackground = true, Name = "atelier-sqlite-writer" }.Start();
        new Thread(Checkpoints) { IsBackground = true, Name = "atelier-sqlite-checkpoint" }.Start();
    }

    /// <summary>
    /// The writer of the file <paramref name="connectionString"/> names, shared by every user in this process (each
    /// host of a test, say) until the last one disposes its <see cref="Use"/>; none for an in-memory database.
    /// </summary>
    public static Use For(string connectionString, int busyTimeoutMs)
    {
        if (OwnConnections.IsInMemory(new SqliteConnectionStringBuilder(connectionString)))
        {
            return new Use(null);
        }

        lock (WritersLock)
        {
            if (!Writers.TryGetValue(connectionString, out var writer))
            {
                writer = new SqliteWriter(connectionString, busyTimeoutMs);
                Writers[connectionString] = writer;
            }

            writer._users++;
            return new Use(writer);
        }
    }

    /// <summary>One user's hold of a shared writer (none for an in-memory database); disposing the last stops its thread and closes its connection.</summary>
    public sealed class Use(SqliteWriter? writer) : IDisposable
    {
        private int _disposed;

        public SqliteWriter? Writer => writer;

        public void Dispose()
        {
            if (writer is null || Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            lock (WritersLock)
            {
                if (--writer._users > 0)
                {
                    return;
                }

                Writers.Remove(writer._connectionString);
            }

            writer.Stop();
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the writer's thread, inside a transaction it may share with other writes, and
    /// answers after that transaction's commit. A write whose <paramref name="ct"/> is canceled before it starts does
    /// not run; once started it runs to its end and is answered whatever the token says (so a caller never misses a
    /// change that was committed for it). <paramref name="work"/> must be quick and must not wait for anything.
    /// </summary>
    public Task<T> RunAsync<T>(Func<IRawWriter, T> work, CancellationToken ct)
    {
        var item = new Write<T>(work);
        Enqueue(item, ct);
        return item.Task;
    }

    /// <summary>
    /// This file's write turn for a caller that writes through EF (its own connection and transaction): answered when
    /// the writes queued before it are committed and the writer waits; disposing it gives the file back.
    /// </summary>
    public async ValueTask<IDisposable?> LendAsync(CancellationToken ct)
    {
        var item = new Lend();
        Enqueue(item, ct);
        return await item.Task;
    }

    private void Enqueue(Item item, CancellationToken ct)
    {
        if (ct.CanBeCanceled)
        {
            item.Registration = ct.Register(static s => ((Item)s!).Cancel(), item);
        }

        lock (_gate)
        {
            if (_stopping)
            {
                item.Fail(new ObjectDisposedException(nameof(SqliteWriter)));
                return;
            }

            _queue.Enqueue(item);
            if (_queue.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    private void Stop()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        lock (_checkpointGate)
        {
            Monitor.Pulse(_checkpointGate);
        }
    }

    /// <summary>What the log file is cut back to when the writer starts it over (SQLite otherwise keeps its largest size).</summary>
    private const long MaxLogBytes = 16L << 20;

    /// <summary>Commits after which the checkpointer copies the log into the file.</summary>
    private const int CommitsPerCheckpoint = 32;

    private readonly object _checkpointGate = new();
    private int _commitsSinceCheckpoint;

    /// <summary>
    /// Copies the write-ahead log into the database file (a passive checkpoint, which never stops the writer) on a
    /// thread and connection of its own, every <see cref="CommitsPerCheckpoint"/> commits of the writer or each second
    /// that saw one. SQLite's own checkpoint runs inside the commit that passes a thousand pages of log: on the writer's
    /// thread it held every queued write for the copy and its sync (about half the writer's commit time, and its CPU,
    /// on the job pipeline: docs/benchmarks.md), so the writer's connection turns it off and leaves it to this thread.
    /// </summary>
    private void Checkpoints()
    {
        SqliteConnection? connection = null;
        try
        {
            while (true)
            {
                lock (_checkpointGate)
                {
                    while (!_stopping && Volatile.Read(ref _commitsSinceCheckpoint) < CommitsPerCheckpoint)
                    {
                        if (!Monitor.Wait(_checkpointGate, TimeSpan.FromSeconds(1)) && Volatile.Read(ref _commitsSinceCheckpoint) > 0)
                        {
                            break;
                        }
                    }

                    if (_stopping)
                    {
                        return;
                    }
                }

                Interlocked.Exchange(ref _commitsSinceCheckpoint, 0);
                try
                {
                    connection ??= OwnConnections.Open(_connectionString, OwnConnections.ContextPragmas(_busyTimeoutMs));
                    using var cmd = connection.CreateCommand();
                    cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                    cmd.ExecuteNonQuery();
                    _restartDue = true;
                }
                catch (Exception)
                {
                    // The next round tries again, on a new connection; SQLite's own checkpoints (the context's connections
                    // still make them) keep the log bounded meanwhile. Nothing may end this thread but the stop.
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            connection?.Dispose();
        }
    }

    /// <summary>Set by the checkpointer when it has copied the log: the writer copies the little it wrote since.</summary>
    private volatile bool _restartDue;

    /// <summary>
    /// The end of a checkpoint, on the writer's connection between two transactions: it copies the frames committed
    /// since the checkpointer's pass (a few transactions' worth), so the writer's next transaction finds the log wholly
    /// copied and starts it over from its beginning. SQLite restarts the log only there (a writer beginning when
    /// nothing in it is left to copy); with the checkpointer alone, the writer always had written more by then, and
    /// the log grew for as long as the load lasted.
    /// </summary>
    private void FinishCheckpoint()
    {
        _restartDue = false;
        try
        {
            using var cmd = Connection().CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
            cmd.ExecuteNonQuery();
        }
        catch (Exception)
        {
            // The next pass tries again; the batch below reports a connection that is really broken.
        }
    }

    private void Committed()
    {
        if (Interlocked.Increment(ref _commitsSinceCheckpoint) == CommitsPerCheckpoint)
        {
            lock (_checkpointGate)
            {
                Monitor.Pulse(_checkpointGate);
            }
        }
    }

    private void Loop()
    {
        var batch = new List<Item>(MaxBatch);
        try
        {
            while (true)
            {
                Item? next;
                lock (_gate)
                {
                    while (_queue.Count == 0 && !_stopping)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_queue.Count == 0)
                    {
                        return;
                    }

                    next = _queue.Dequeue();
                }

                if (next is Lend lend)
                {
                    lend.Grant();
                    continue;
                }

                if (_restartDue)
                {
                    FinishCheckpoint();
                }

                RunBatch((Work)next, batch);
            }
        }
        finally
        {
            lock (_gate)
            {
                _stopping = true;
                while (_queue.TryDequeue(out var left))
                {
                    left.Fail(new ObjectDisposedException(nameof(SqliteWriter)));
                }
            }

            DropConnection();
        }
    }

    /// <summary>
    /// One transaction: <paramref name="first"/> and the writes queued behind it, up to a lend (which waits for the
    /// commit) or <see cref="MaxBatch"/>. Their callers are answered after the commit, or with its failure.
    /// </summary>
    private void RunBatch(Work first, List<Item> batch)
    {
        batch.Clear();
        var open = false;
        try
        {
            var work = first;
            while (true)
            {
                if (work.TryStart())
                {
                    batch.Add(work);
                    if (!open)
                    {
                        Connection();
                        Run("BEGIN IMMEDIATE");
                        open = true;
                    }

                    RunOne(work, batch, ref open);
                }

                lock (_gate)
                {
                    if (batch.Count >= MaxBatch || !_queue.TryPeek(out var queued) || queued is not Work w)
                    {
                        break;
                    }

                    work = w;
                    _queue.Dequeue();
                }
            }

            if (open)
            {
                Run("COMMIT");
                Committed();
                open = false;
            }
        }
        catch (Exception e)
        {
            // The transaction could not begin or commit (the file busy past the timeout, the disk full): nothing of it
            // is kept, so no write of it succeeded.
            if (open)
            {
                TryRollback();
            }

            foreach (var w in batch)
            {
                ((Work)w).Failed ??= e;
            }

            DropConnection();
        }

        foreach (var w in batch)
        {
            ((Work)w).Answer();
        }
    }

    private void RunOne(Work work, List<Item> batch, ref bool open)
    {
        Run("SAVEPOINT w");
        try
        {
            work.Run(this);
            if (SQLitePCL.raw.sqlite3_get_autocommit(_connection!.Handle) != 0)
            {
                // The write caught a failure after which SQLite had ended the transaction, and went on: what it wrote
                // since then was committed statement by statement. It is reported as the failure it is.
                throw new InvalidOperationException("the transaction ended inside a write; its statements after that were not part of it");
            }

            Run("RELEASE w");
        }
        catch (Exception e)
        {
            work.Failed = e;
            if (SQLitePCL.raw.sqlite3_get_autocommit(_connection!.Handle) == 0)
            {
                Run("ROLLBACK TO w");
                Run("RELEASE w");
                return;
            }

            // SQLite ended the whole transaction itself (an I/O error, the disk full): the writes before this one in
            // the batch are gone with it, so they failed too; the next write starts a new transaction.
            open = false;
            foreach (var done in batch)
            {
                if (done != work)
                {
                    ((Work)done).Failed ??= e;
                    ((Work)done).Answer();
                }
            }

            batch.Clear();
            batch.Add(work);
        }
    }

    private void TryRollback()
    {
        try
        {
            if (_connection is { } c && SQLitePCL.raw.sqlite3_get_autocommit(c.Handle) == 0)
            {
                Run("ROLLBACK");
            }
        }
        catch (SqliteException)
        {
            // The connection is dropped below; SQLite rolls back what it had open when it closes.
        }
    }

    private SqliteConnection Connection()
    {
        if (_connection is not null)
        {
            return _connection;
        }

        // No checkpoint of its own (Checkpoints does them), and the log cut back when it starts over. Each write runs in a
        // savepoint (RunOne), so SQLite keeps a statement journal of the pages it changes: on disk (a temporary file,
        // opened and unlinked per transaction) once it passes 64 KiB, unless temp_store is MEMORY. A write's pages are few
        // and a batch is at most MaxBatch writes, so in memory it stays small; on disk it was most of what this thread
        // wrote (docs/benchmarks.md, issue 18: 192 KiB written per job before, 44 after). The journal only rolls a
        // savepoint back: a crash is recovered from the write-ahead log, as before.
        _connection = OwnConnections.Open(_connectionString,
            $"{OwnConnections.ContextPragmas(_busyTimeoutMs)} PRAGMA wal_autocheckpoint=0; PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit={MaxLogBytes.ToString(CultureInfo.InvariantCulture)};");
        _statements = new PreparedStatements(_connection, MaxStatements);
        return _connection;
    }

    /// <summary>A statement without parameters (the transaction's and the savepoints'), prepared once like the others.</summary>
    private void Run(string sql) => _statements!.Bound(sql, []).ExecuteNonQuery();

    /// <summary>After a failure of the transaction itself: the next batch opens the connection afresh.</summary>
    private void DropConnection()
    {
        _statements?.Dispose();
        _statements = null;
        _connection?.Dispose();
        _connection = null;
    }

    int IRawWriter.Execute(string sql, IReadOnlyList<object?> parameters) => _statements!.Bound(sql, parameters).ExecuteNonQuery();

    List<T> IRawWriter.Query<T>(string sql, IReadOnlyList<object?> parameters, Func<DbDataReader, T> read) => _statements!.Query(sql, parameters, read);

    /// <summary>A place in the queue: a write, or a lend of the file.</summary>
    private abstract class Item
    {
        private int _state; // 0 queued, 1 started, 2 canceled

        public CancellationTokenRegistration Registration { get; set; }

        /// <summary>False when it was canceled before it started (it is then answered as canceled).</summary>
        public bool TryStart()
        {
            Registration.Dispose();
            return Interlocked.CompareExchange(ref _state, 1, 0) == 0;
        }

        public void Cancel()
        {
            if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
            {
                Canceled();
            }
        }

        protected abstract void Canceled();

        public abstract void Fail(Exception e);
    }

    private abstract class Work : Item
    {
        public Exception? Failed { get; set; }

        public abstract void Run(IRawWriter writer);

        public abstract void Answer();
    }

    private sealed class Write<T>(Func<IRawWriter, T> work) : Work
    {
        private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _done.Task;

        public override void Run(IRawWriter writer) => _result = work(writer);

        public override void Answer()
        {
            if (Failed is { } e)
            {
                _done.TrySetException(e);
            }
            else
            {
                _done.TrySetResult(_result!);
            }
        }

        protected override void Canceled() => _done.TrySetCanceled();

        public override void Fail(Exception e) => _done.TrySetException(e);
    }

    /// <summary>The file lent to an EF writer: the writer's thread waits until the caller disposes what it was given.</summary>
    private sealed class Lend : Item, IDisposable
    {
        private readonly TaskCompletionSource<IDisposable?> _granted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _returned = new();
        private int _given;

        public Task<IDisposable?> Task => _granted.Task;

        public void Grant()
        {
            if (!TryStart())
            {
                return;
            }

            _granted.TrySetResult(this);
            _returned.Wait();
        }

        /// <summary>Gives the file back (once; a second dispose does nothing).</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _given, 1) == 0)
            {
                _returned.Set();
            }
        }

        protected override void Canceled() => _granted.TrySetCanceled();

        public override void Fail(Exception e) => _granted.TrySetException(e);
    }
}
