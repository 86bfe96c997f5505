using Atelier.Data;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Atelier.Server.Tests.Infrastructure;

/// <summary>
/// A named lock taken from outside any server, the way docs/replicas.md tells an operator to: on PostgreSQL the
/// advisory lock whose key SQL computes from the name (<see cref="DatabaseLocks.AdvisoryKeySql"/>) on a connection of
/// its own; on SQLite an exclusive lock on the file <c>&lt;database file&gt;.locks/&lt;percent-encoded name&gt;</c>.
/// </summary>
public sealed class OutsideLock : IAsyncDisposable
{
    private readonly NpgsqlConnection? _conn;
    private readonly FileStream? _file;

    private OutsideLock(NpgsqlConnection? conn, FileStream? file)
    {
        _conn = conn;
        _file = file;
    }

    /// <summary>The lock file of <paramref name="name"/> beside a SQLite test database, by the documented rule.</summary>
    public static string FileOf(TestDatabase db, string name) =>
        Path.Combine(new SqliteConnectionStringBuilder(db.ConnectionString).DataSource + ".locks", Uri.EscapeDataString(name));

    /// <summary>Takes the lock if it is free now; null when someone holds it.</summary>
    public static async Task<OutsideLock?> TryTakeAsync(TestDatabase db, string name)
    {
        if (db.Provider == "postgres")
        {
            var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString);
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand($"SELECT pg_try_advisory_lock({DatabaseLocks.AdvisoryKeySql})", conn) { Parameters = { new() { Value = name } } };
            if (await cmd.ExecuteScalarAsync() is true)
            {
                return new OutsideLock(conn, null);
            }

            await conn.DisposeAsync();
            return null;
        }

        var path = FileOf(db, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new OutsideLock(null, new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (e.GetType() == typeof(IOException))
        {
            return null; // held: flock refused
        }
    }

    /// <summary>Takes the lock, waiting for a holder that is letting it go (a server stopping, a session ending).</summary>
    public static async Task<OutsideLock> TakeAsync(TestDatabase db, string name)
    {
        OutsideLock? taken = null;
        await Eventually.UntilAsync(async () => (taken = await TryTakeAsync(db, name)) is not null, $"the lock {name} is free to take from outside");
        return taken!;
    }

    public async ValueTask DisposeAsync()
    {
        if (_conn is not null)
        {
            await _conn.DisposeAsync(); // the session ends, and its advisory locks with it
        }

        if (_file is not null)
        {
            await _file.DisposeAsync();
        }
    }
}
