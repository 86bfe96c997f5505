using System.Runtime.CompilerServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Atelier.Data.Postgres;

/// <summary>PostgreSQL: row locks with SKIP LOCKED, data-modifying WITH, LISTEN/NOTIFY and advisory locks between replicas.</summary>
internal sealed class PostgresProvider : IDatabaseProvider
{
    public string Name => "postgres";

    public void Register(IServiceCollection services)
    {
        services.AddDbContextPool<PostgresAtelierDb>((sp, o) => o.UseNpgsql(Pooled(sp.GetRequiredService<DatabaseOptions>().ConnectionString!)));
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<PostgresAtelierDb>()));
    }

    /// <summary>
    /// The application's pooled connections skip Npgsql's reset (<c>DISCARD ALL</c>, a round trip each time a pooled
    /// connection is taken again: about ten per job) unless the connection string says otherwise. Nothing here leaves
    /// session state behind: settings are per transaction, and the listener and the advisory locks use connections of
    /// their own, outside the pool.
    /// </summary>
    internal static string Pooled(string connectionString)
    {
        // The keys as written (a password may contain any word): "No Reset On Close", or its spelling without spaces.
        var named = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(k => string.Equals(k.Replace(" ", "", StringComparison.Ordinal), "NoResetOnClose", StringComparison.OrdinalIgnoreCase));
        return named ? connectionString : new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true }.ConnectionString;
    }

    public Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct) => Task.CompletedTask;

    public string SkipLocked => " FOR UPDATE SKIP LOCKED";

    public string AgentHasNoUnit => "\"AgentId\" <> ALL (ARRAY(SELECT u.\"AgentId\" FROM computing_units u WHERE u.\"AgentId\" IS NOT NULL))";

    public bool ChainsWrites => true;

    public bool Notifies => true;

    public async Task LockRowsAsync(AtelierDb db, FormattableString rows, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync(FormattableStringFactory.Create(rows.Format + " FOR UPDATE", rows.GetArguments()), ct);

    public async Task NotifyAsync(AtelierDb db, string channel, string payload, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync($"SELECT pg_notify({channel}, {payload})", ct);

    public ValueTask<IDisposable?> WriteTurnAsync(AtelierDb db, CancellationToken ct) => ValueTask.FromResult<IDisposable?>(null);

    public Task<IDatabaseLock?> TryLockAsync(DatabaseOptions options, string name, CancellationToken ct) =>
        AdvisoryLock.TryTakeAsync(options.ConnectionString!, name, ct);

    public async Task ListenAsync(DatabaseOptions options, IReadOnlyList<string> channels, Action<string, string> received, Action listening, CancellationToken ct)
    {
        // Its own connection, outside the pool: a connection that listens must not be handed to anyone else.
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(options.ConnectionString) { Pooling = false }.ConnectionString);
        await conn.OpenAsync(ct);
        conn.Notification += (_, e) => received(e.Channel, e.Payload);
        await using (var listen = new NpgsqlCommand(string.Concat(channels.Select(c => $"LISTEN {c}; ")), conn))
        {
            await listen.ExecuteNonQueryAsync(ct);
        }

        listening();
        while (!ct.IsCancellationRequested)
        {
            await conn.WaitAsync(ct);
        }
    }
}
