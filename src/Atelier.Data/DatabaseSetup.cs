using System.Data.Common;
using Atelier.Data.Postgres;
using Atelier.Data.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Atelier.Data;

/// <summary>One database backend, chosen by <see cref="Name"/> from configuration.</summary>
public interface IDatabaseProvider
{
    string Name { get; }
    /// <summary>Registers the provider's context; its settings are read from <see cref="DatabaseOptions"/> when it is first made.</summary>
    void Register(IServiceCollection services);
    /// <summary>Checks at start what the provider promises (SQLite: WAL and the busy timeout).</summary>
    Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct);
}

public static class DatabaseProviders
{
    public static IReadOnlyList<IDatabaseProvider> All { get; } = [new SqliteProvider(), new PostgresProvider()];

    /// <summary>The provider of that name, or null when none has it.</summary>
    public static IDatabaseProvider? Named(string? name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

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

    /// <summary>
    /// Binds <c>Atelier:Database</c> (validated at start) and registers the chosen provider's context as
    /// <see cref="AtelierDb"/>. Unset, the connection string of SQLite is a file in <paramref name="dataDirectory"/>.
    /// </summary>
    public static IServiceCollection AddAtelierData(this IServiceCollection services, IConfiguration configuration, string dataDirectory)
    {
        var section = configuration.GetSection(DatabaseOptions.SectionName);
        services.AddOptions<DatabaseOptions>().Bind(section)
            .PostConfigure(o => o.ConnectionString ??= string.Equals(o.Provider, "sqlite", StringComparison.OrdinalIgnoreCase)
                ? $"Data Source={Path.Combine(dataDirectory, "atelier.db")}"
                : null)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<DatabaseOptions>, DatabaseOptions.Validator>();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<DatabaseOptions>>().Value);

        // The provider is chosen now, by its name (a string: binding cannot refuse it). An unknown name registers
        // nothing here, and the validation at start refuses it with the others.
        var name = section[nameof(DatabaseOptions.Provider)] ?? new DatabaseOptions().Provider;
        if (Named(name) is { } provider)
        {
            services.AddSingleton(provider);
            provider.Register(services);
        }

        return services;
    }
}

internal sealed class SqliteProvider : IDatabaseProvider
{
    public string Name => "sqlite";

    public void Register(IServiceCollection services)
    {
        services.AddDbContextPool<SqliteAtelierDb>((sp, o) =>
        {
            var options = sp.GetRequiredService<DatabaseOptions>();
            o.UseSqlite(options.ConnectionString).AddInterceptors(new SqlitePragmas(options.SqliteBusyTimeoutMs));
        });
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

    public void Register(IServiceCollection services)
    {
        services.AddDbContextPool<PostgresAtelierDb>((sp, o) => o.UseNpgsql(sp.GetRequiredService<DatabaseOptions>().ConnectionString));
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<PostgresAtelierDb>()));
    }

    public Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct) => Task.CompletedTask;
}
