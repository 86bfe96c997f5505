using Microsoft.Data.Sqlite;

namespace Atelier.Data.Sqlite;

/// <summary>
/// An exclusive OS lock on a file beside the database (<see cref="DatabaseLocks.LockFile"/>): .NET opens it with
/// <see cref="FileShare.None"/>, which on Linux and macOS is <c>flock(LOCK_EX | LOCK_NB)</c>, so it excludes other
/// processes and other opens in this one, and the OS drops it when the process dies. The files are never deleted:
/// removing a lock file that another process has open would let a third lock a new file of the same name beside the
/// old lock. (Setting <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> turns these locks off, and with them this exclusion.)
/// </summary>
internal sealed class FileLock(string name, FileStream file) : IDatabaseLock
{
    // The sharing violation: EWOULDBLOCK on Linux (11) and macOS (35), ERROR_SHARING_VIOLATION on Windows.
    private static readonly int[] HeldElsewhere = [11, 35, unchecked((int)0x80070020)];

    public string Name { get; } = name;

    public static IDatabaseLock? TryTake(string connectionString, string name)
    {
        var database = new SqliteConnectionStringBuilder(connectionString);
        if (OwnConnections.IsInMemory(database))
        {
            throw new InvalidOperationException("Named locks on SQLite need a database file; the connection string names an in-memory database.");
        }

        var path = DatabaseLocks.LockFile(database.DataSource, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            return new FileLock(name, new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (e.GetType() == typeof(IOException) && HeldElsewhere.Contains(e.HResult))
        {
            return null;
        }
    }

    public Task<bool> IsHeldAsync(CancellationToken ct) => Task.FromResult(true);

    public ValueTask DisposeAsync() => file.DisposeAsync();
}
