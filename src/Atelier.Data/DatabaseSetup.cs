using System.Data.Common;
using Atelier.Data.Postgres;
using Atelier.Data.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Data;

/// <summary>One database backend, chosen by <see cref="Name"/> from configuration.</summary>
public interface IDatabaseProvider
{
    string Name { get; }
    void Register(IServiceCollection services, DatabaseOptions options);
    /// <summary>Checks at start what the provider promises (SQLite: WAL and the busy timeout).</summary>
    Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct);
}

public static class DatabaseProviders
{
    public static IReadOnlyList<IDatabaseProvider> All { get; } = [new SqliteProvider(), new PostgresProvider()];

    public static IDatabaseProvider Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new InvalidOperationException(
            $"Unknown database provider '{name}'. Known providers: {string.Join(", ", All.Select(p => p.Name))}.");

    /// <summary>
    /// Contexts are pooled (creating one costs more than a simple query). A pooled context may come back with the
    /// tenant scope of its last user, so every lease starts with none: nothing tenant-owned is visible until the
    /// request's access check sets its own tenant.
    /// </summary>
    internal static AtelierDb Lease(AtelierDb db)
    {
        db.TenantScope = null;
        return db;
    }

    /// <summary>Registers the chosen provider's context as <see cref="AtelierDb"/>.</summary>
    public static IServiceCollection AddAtelierData(this IServiceCollection services, DatabaseOptions options)
    {
        var provider = Find(options.Provider);
        services.AddSingleton(provider);
        services.AddSingleton(options);
        provider.Register(services, options);
        return services;
    }
}

internal sealed class SqliteProvider : IDatabaseProvider
{
    public string Name => "sqlite";

    public void Register(IServiceCollection services, DatabaseOptions options)
    {
        var interceptor = new SqlitePragmas(options.SqliteBusyTimeoutMs);
        services.AddDbContextPool<SqliteAtelierDb>(o => o
            .UseSqlite(options.ConnectionString)
            .AddInterceptors(interceptor));
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<SqliteAtelierDb>()));
    }

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
            cmd.CommandText = $"PRAGMA busy_timeout={busyTimeoutMs}; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;";
            cmd.ExecuteNonQuery();
        }
    }
}

internal sealed class PostgresProvider : IDatabaseProvider
{
    public string Name => "postgres";

    public void Register(IServiceCollection services, DatabaseOptions options)
    {
        services.AddDbContextPool<PostgresAtelierDb>(o => o.UseNpgsql(options.ConnectionString));
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<PostgresAtelierDb>()));
    }

    public Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct) => Task.CompletedTask;
}
