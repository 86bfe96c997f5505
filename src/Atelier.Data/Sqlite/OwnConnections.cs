using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Atelier.Data.Sqlite;

/// <summary>
/// What the connections this process keeps beside EF's (<see cref="SqliteReads"/>, <see cref="SqliteWriter"/>) share:
/// whether the database is a file at all, how such a connection is opened, and the pragmas of the context's own.
/// </summary>
internal static class OwnConnections
{
    /// <summary>An in-memory database is private to its connection: another connection would see another database.</summary>
    public static bool IsInMemory(SqliteConnectionStringBuilder database) =>
        database.Mode == SqliteOpenMode.Memory || database.DataSource is "" or ":memory:";

    /// <summary>The pragmas every connection of the context has (set once per physical connection by SqliteProvider).</summary>
    public static string ContextPragmas(int busyTimeoutMs) =>
        $"PRAGMA busy_timeout={busyTimeoutMs.ToString(CultureInfo.InvariantCulture)}; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;";

    /// <summary>
    /// A connection of the caller's own, open, with <paramref name="pragmas"/> run on it: not from Microsoft.Data.Sqlite's
    /// pool, and not back to it (its pragmas and prepared statements stay on the handle for as long as it lives, and a
    /// pooled handle could be the next one EF opens).
    /// </summary>
    public static SqliteConnection Open(string connectionString, string pragmas)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(connectionString) { Pooling = false }.ToString());
        try
        {
            connection.Open();
            using var cmd = connection.CreateCommand();
            cmd.CommandText = pragmas;
            cmd.ExecuteNonQuery();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }
}

/// <summary>
/// Statements of one connection kept prepared by their text (EF's <c>{0}</c> placeholders), at most
/// <paramref name="max"/>; when that many are kept, all are dropped and prepared again as they come.
/// </summary>
internal sealed class PreparedStatements(SqliteConnection connection, int max) : IDisposable
{
    private readonly Dictionary<string, SqliteCommand> _statements = new(StringComparer.Ordinal);

    /// <summary>The statement of <paramref name="sql"/> with <paramref name="parameters"/> bound (any later parameter unbound).</summary>
    public SqliteCommand Bound(string sql, IReadOnlyList<object?> parameters)
    {
        if (!_statements.TryGetValue(sql, out var cmd))
        {
            if (_statements.Count >= max)
            {
                Dispose();
            }

            cmd = connection.CreateCommand();
            cmd.CommandText = RawCommands.Placeholders(sql);
            cmd.Prepare();
            _statements[sql] = cmd;
        }

        for (var i = cmd.Parameters.Count; i < parameters.Count; i++)
        {
            cmd.Parameters.Add(new SqliteParameter(RawCommands.ParameterName(i), DBNull.Value));
        }

        for (var i = 0; i < cmd.Parameters.Count; i++)
        {
            // Past this call's parameters (the same text run with fewer), none keeps an earlier call's value.
            cmd.Parameters[i].Value = i < parameters.Count ? parameters[i] ?? DBNull.Value : DBNull.Value;
        }

        return cmd;
    }

    /// <summary>Rows of the statement, each read with <paramref name="read"/>.</summary>
    public List<T> Query<T>(string sql, IReadOnlyList<object?> parameters, Func<System.Data.Common.DbDataReader, T> read)
    {
        var rows = new List<T>();
        using var r = Bound(sql, parameters).ExecuteReader();
        while (r.Read())
        {
            rows.Add(read(r));
        }

        return rows;
    }

    /// <summary>Drops every statement (the connection stays the owner's).</summary>
    public void Dispose()
    {
        foreach (var cmd in _statements.Values)
        {
            cmd.Dispose();
        }

        _statements.Clear();
    }
}
