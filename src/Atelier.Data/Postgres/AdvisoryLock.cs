using Npgsql;

namespace Atelier.Data.Postgres;

/// <summary>
/// A session-level advisory lock on a connection of its own. The connection is never pooled: closing it ends the
/// session, so the lock cannot outlive its holder in a pool, and a holder that dies (even by SIGKILL) loses it as soon
/// as PostgreSQL sees the connection close. The session shows in <c>pg_stat_activity</c> as <c>atelier lock NAME</c>.
/// </summary>
internal sealed class AdvisoryLock : IDatabaseLock
{
    private readonly NpgsqlConnection _conn;
    private readonly long _key;

    private AdvisoryLock(string name, long key, NpgsqlConnection conn)
    {
        Name = name;
        _key = key;
        _conn = conn;
    }

    public string Name { get; }

    public static async Task<IDatabaseLock?> TryTakeAsync(string connectionString, string name, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false };
        var label = $"atelier lock {name}";
        builder.ApplicationName = label.Length > 63 ? label[..63] : label;
        var conn = new NpgsqlConnection(builder.ConnectionString);
        var key = DatabaseLocks.AdvisoryKey(name);
        try
        {
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT pg_try_advisory_lock($1)", conn) { Parameters = { new() { Value = key } } };
            if (await cmd.ExecuteScalarAsync(ct) is true)
            {
                return new AdvisoryLock(name, key, conn);
            }
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }

        await conn.DisposeAsync();
        return null;
    }

    public async Task<bool> IsHeldAsync(CancellationToken ct)
    {
        // Only this session can release a session-level lock, so the session answering is the lock being held.
        try
        {
            await using var cmd = new NpgsqlCommand("SELECT 1", _conn);
            return await cmd.ExecuteScalarAsync(ct) is 1;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Unlocked before the close, so the next holder need not wait for the server to notice the session end.
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await using var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", _conn) { Parameters = { new() { Value = _key } } };
            await cmd.ExecuteScalarAsync(cts.Token);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException or TimeoutException or OperationCanceledException)
        {
            // The connection is gone already, and the lock with it.
        }

        await _conn.DisposeAsync();
    }
}
