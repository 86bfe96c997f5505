using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Sqlite.Storage.Internal;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Data.Sqlite;

/// <summary>SQLite: one file, one writer at a time (WAL), no notifications between processes, named locks as OS file locks.</summary>
internal sealed class SqliteProvider : IDatabaseProvider
{
    public string Name => "sqlite";

    public void Register(IServiceCollection services)
    {
        services.AddDbContextPool<SqliteAtelierDb>((sp, o) =>
        {
            var options = sp.GetRequiredService<DatabaseOptions>();
#pragma warning disable EF1001 // replacing EF's internal SQLite connection service (see PlainSqliteConnection)
            o.UseSqlite(options.ConnectionString).AddInterceptors(new SqlitePragmas(options.SqliteBusyTimeoutMs))
                .ReplaceService<ISqliteRelationalConnection, PlainSqliteConnection>();
#pragma warning restore EF1001
        });
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<DatabaseOptions>();
            return new SqliteReads(options.ConnectionString!, options.SqliteBusyTimeoutMs);
        });
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<DatabaseOptions>();
            return SqliteWriter.For(options.ConnectionString!, options.SqliteBusyTimeoutMs);
        });
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<SqliteAtelierDb>(), sp.GetRequiredService<SqliteReads>(),
            sp.GetRequiredService<SqliteWriter.Use>().Writer));
    }

    public string SkipLocked => "";

    public string AgentHasNoUnit => "NOT EXISTS (SELECT 1 FROM computing_units u WHERE u.\"AgentId\" = jobs.\"AgentId\")";

    public bool ChainsWrites => false;

    public bool Notifies => false;

    public Task LockRowsAsync(AtelierDb db, FormattableString rows, CancellationToken ct) => Task.CompletedTask;

    public Task NotifyAsync(AtelierDb db, string channel, string payload, CancellationToken ct) => Task.CompletedTask;

    public Task NotifyManyAsync(AtelierDb db, IReadOnlyList<(string Channel, string Payload)> notes, CancellationToken ct) => Task.CompletedTask;

    public Task ListenAsync(DatabaseOptions options, IReadOnlyList<string> channels, Action<string, string> received, Action listening, CancellationToken ct) =>
        Task.CompletedTask;

    /// <summary>One turn at a time per database file in this process (first come, first served).</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> Turns = new(StringComparer.Ordinal);

    public async ValueTask<IDisposable?> WriteTurnAsync(AtelierDb db, CancellationToken ct)
    {
        if (db.Writes is { } writer)
        {
            // The file's writer lends it, in the same queue as the writes it runs itself (SqliteWriter).
            return await writer.LendAsync(ct);
        }

        // A context made outside the container (the migrator, a tool): the process's turn for the file.
        var turn = Turns.GetOrAdd(db.Database.GetConnectionString() ?? "", _ => new SemaphoreSlim(1, 1));
        await turn.WaitAsync(ct);
        return new Turn(turn);
    }

    private sealed class Turn(SemaphoreSlim turn) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                turn.Release();
            }
        }
    }

    public Task<IDatabaseLock?> TryLockAsync(DatabaseOptions options, string name, CancellationToken ct) =>
        Task.FromResult(FileLock.TryTake(options.ConnectionString!, name));

    public async Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct)
    {
        // WAL is a property of the file: set it once, then read back what every connection sees.
        var mode = await Scalar(db, "PRAGMA journal_mode=WAL;", ct);
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidOperationException($"SQLite journal_mode is '{mode}', expected 'wal'.");
        }

        var timeout = await Scalar(db, "PRAGMA busy_timeout;", ct);
        if (timeout != options.SqliteBusyTimeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException($"SQLite busy_timeout is {timeout} ms, expected {options.SqliteBusyTimeoutMs}.");
        }
    }

    private static async Task<string?> Scalar(AtelierDb db, string sql, CancellationToken ct)
    {
        var conn = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = sql;
            return (await cmd.ExecuteScalarAsync(ct))?.ToString();
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>
    /// Sets the per-connection pragmas once per physical connection: pooled connections keep their sqlite3 handle,
    /// and the pragmas live on the handle, so a reopened connection needs nothing.
    /// </summary>
    private sealed class SqlitePragmas(int busyTimeoutMs) : DbConnectionInterceptor
    {
        private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _prepared = [];

        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData) => Apply(connection);

        public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            Apply(connection);
            return Task.CompletedTask;
        }

        private void Apply(DbConnection connection)
        {
            if (connection is not SqliteConnection sqlite || sqlite.Handle is not { } handle || _prepared.TryGetValue(handle, out _))
            {
                return;
            }

            _prepared.AddOrUpdate(handle, handle);

            using var cmd = connection.CreateCommand();
            cmd.CommandText = OwnConnections.ContextPragmas(busyTimeoutMs);
            cmd.ExecuteNonQuery();
        }
    }
}
