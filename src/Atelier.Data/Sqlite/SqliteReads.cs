using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Atelier.Data.Sqlite;

/// <summary>
/// Connections kept open for the hottest reads, each with its statements prepared once. Through EF every query opens
/// the context's connection (a handle from Microsoft.Data.Sqlite's pool), prepares its statement (SQLite parses and
/// plans it again) and closes it, disposing the statement: about a third of SQLite's own time on the API read
/// (docs/benchmarks.md). A read here skips all three. It sees what is committed, like any read outside a transaction;
/// <see cref="RawCommands.ReadAsync{T}"/> sends a read made inside the context's transaction to that transaction instead.
/// At most <see cref="MaxConnections"/> are open; a read that finds none idle then opens none and answers null, and its
/// caller reads through the context.
/// </summary>
public sealed class SqliteReads(string connectionString, int busyTimeoutMs) : IDisposable
{
    /// <summary>The connections kept open, at most: a read holds one only while it runs (it never waits inside).</summary>
    public static readonly int MaxConnections = Math.Clamp(Environment.ProcessorCount * 2, 4, 16);

    /// <summary>Statements kept per connection, at most (the hot reads are a handful of fixed texts).</summary>
    private const int MaxStatements = 32;

    private readonly ConcurrentBag<Reader> _idle = [];
    private int _open;
    private volatile bool _disposed;

    private readonly bool _file = !OwnConnections.IsInMemory(new SqliteConnectionStringBuilder(connectionString));

    /// <summary>The rows of <paramref name="sql"/> (EF's <c>{0}</c> placeholders), or null when every connection is busy.</summary>
    public List<T>? Query<T>(string sql, IReadOnlyList<object?> parameters, Func<DbDataReader, T> read)
    {
        Reader? reader;
        try
        {
            reader = !_file || _disposed ? null : Rent();
        }
        catch (SqliteException)
        {
            reader = null; // no connection could be opened: the read goes through the context, which reports it
        }

        if (reader is null)
        {
            return null;
        }

        var keep = false;
        try
        {
            var rows = reader.Statements.Query(sql, parameters, read);
            keep = true;
            return rows;
        }
        finally
        {
            if (keep && !_disposed)
            {
                _idle.Add(reader);
                if (_disposed)
                {
                    Drain(); // disposed meanwhile: what is idle now would never be closed
                }
            }
            else
            {
                reader.Dispose();
                Interlocked.Decrement(ref _open);
            }
        }
    }

    private Reader? Rent()
    {
        if (_idle.TryTake(out var idle))
        {
            return idle;
        }

        if (Interlocked.Increment(ref _open) > MaxConnections)
        {
            Interlocked.Decrement(ref _open);
            return null;
        }

        try
        {
            return new Reader(connectionString, busyTimeoutMs);
        }
        catch
        {
            Interlocked.Decrement(ref _open);
            throw;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        Drain();
    }

    private void Drain()
    {
        while (_idle.TryTake(out var reader))
        {
            reader.Dispose();
        }
    }

    private sealed class Reader : IDisposable
    {
        private readonly SqliteConnection _connection;

        public Reader(string connectionString, int busyTimeoutMs)
        {
            // query_only stays on the handle, which is never the pool's (OwnConnections.Open).
            _connection = OwnConnections.Open(connectionString, $"PRAGMA busy_timeout={busyTimeoutMs.ToString(CultureInfo.InvariantCulture)}; PRAGMA query_only=1;");
            Statements = new PreparedStatements(_connection, MaxStatements);
        }

        public PreparedStatements Statements { get; }

        public void Dispose()
        {
            Statements.Dispose();
            _connection.Dispose();
        }
    }
}
