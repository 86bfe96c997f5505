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
        services.AddDbContextPool<PostgresAtelierDb>((sp, o) => o.UseNpgsql(sp.GetRequiredService<DatabaseOptions>().ConnectionString));
        services.AddScoped<AtelierDb>(sp => DatabaseProviders.Lease(sp.GetRequiredService<PostgresAtelierDb>()));
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
        await using var conn = new NpgsqlConnection(options.ConnectionString);
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
