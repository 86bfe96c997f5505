using System.Data.Common;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace Atelier.Data;

/// <summary>
/// A statement run through the context's own connection and transaction, without EF's query pipeline: for the few
/// writes on every job's path, where EF's per-execution work (parameter extraction, SQL post-processing and
/// materializing a whole entity) measured several times the database's own cost. The SQL uses EF's
/// <c>{0}</c>, <c>{1}</c> … placeholders, so the same text serves both (see docs/benchmarks.md, issue 18).
/// </summary>
public static partial class RawCommands
{
    [GeneratedRegex(@"\{(\d+)\}")]
    private static partial Regex Placeholder();

    /// <summary>Runs <paramref name="sql"/> and reads each row with <paramref name="read"/>.</summary>
    public static async Task<List<T>> QueryAsync<T>(AtelierDb db, string sql, IReadOnlyList<object?> parameters, Func<DbDataReader, T> read, CancellationToken ct)
    {
        var rows = new List<T>();
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var cmd = Command(db, sql, parameters);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                rows.Add(read(reader));
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }

        return rows;
    }

    /// <summary>
    /// A read of committed rows: on SQLite, outside a transaction, through <see cref="Sqlite.SqliteReads"/> (a connection
    /// kept open with the statement prepared once); otherwise, or when those connections are all busy, as
    /// <see cref="QueryAsync{T}"/> does. Only for fixed SQL texts: each distinct text is a prepared statement kept open.
    /// </summary>
    public static Task<List<T>> ReadAsync<T>(AtelierDb db, string sql, IReadOnlyList<object?> parameters, Func<DbDataReader, T> read, CancellationToken ct) =>
        db.Reads is { } reads && db.Database.CurrentTransaction is null && reads.Query(sql, parameters, read) is { } rows
            ? Task.FromResult(rows)
            : QueryAsync(db, sql, parameters, read, ct);

    /// <summary>EF's <c>{n}</c> placeholders as ADO.NET parameter names (<c>@pn</c>).</summary>
    internal static string Placeholders(string sql) => Placeholder().Replace(sql, m => "@p" + m.Groups[1].Value);

    /// <summary>
    /// <paramref name="sql"/> with each <c>{n}</c> placeholder moved up by <paramref name="by"/>: one statement's text
    /// repeated in a batch, each copy with its own parameters.
    /// </summary>
    public static string Shifted(string sql, int by) =>
        Placeholder().Replace(sql, m => "{" + (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + by).ToString(CultureInfo.InvariantCulture) + "}");

    internal static string ParameterName(int i) => "@p" + i.ToString(CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="sql"/> and answers the rows it changed.</summary>
    public static async Task<int> ExecuteAsync(AtelierDb db, string sql, IReadOnlyList<object?> parameters, CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var cmd = Command(db, sql, parameters);
            return await cmd.ExecuteNonQueryAsync(ct);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static DbCommand Command(AtelierDb db, string sql, IReadOnlyList<object?> parameters)
    {
        var cmd = db.Database.GetDbConnection().CreateCommand();
        // Rewritten per call, not cached: the claim's text varies with the slots it leaves models to, so a cache keyed by
        // it would grow without bound (the replace is a few microseconds).
        cmd.CommandText = Placeholders(sql);
        cmd.Transaction = db.Database.CurrentTransaction?.GetDbTransaction();
        if (db.Database.GetCommandTimeout() is { } timeout)
        {
            cmd.CommandTimeout = timeout;
        }

        for (var i = 0; i < parameters.Count; i++)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = ParameterName(i);
            p.Value = parameters[i] ?? DBNull.Value;
            cmd.Parameters.Add(p);
        }

        return cmd;
    }
}
