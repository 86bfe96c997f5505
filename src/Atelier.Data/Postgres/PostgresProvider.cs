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
    /// connection is taken again: about ten per job), and prepare the statements they run again (Npgsql's automatic
    /// preparation: a statement seen twice on a connection is prepared there, so PostgreSQL stops parsing and planning
    /// it on each run; a third to a half of its CPU per job in the queue's bench). Each is left as it is when the
    /// connection string names it (<c>Max Auto Prepare=0</c> turns preparation off, for a pooler in transaction mode
    /// that does not carry prepared statements). Nothing here leaves session state behind: settings are per transaction,
    /// and the listener and the advisory locks use connections of their own, outside the pool.
    /// </summary>
    internal static string Pooled(string connectionString)
    {
        // The keys as written (a password may contain any word), with or without their spaces.
        var keys = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Select(k => k.Replace(" ", "", StringComparison.Ordinal)).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (!keys.Contains("NoResetOnClose"))
        {
            b.NoResetOnClose = true;
        }

        if (!keys.Contains("MaxAutoPrepare"))
        {
            b.MaxAutoPrepare = AutoPrepared;
        }

        if (!keys.Contains("AutoPrepareMinUsages"))
        {
            b.AutoPrepareMinUsages = 2;
        }

        return b.ConnectionString;
    }

    /// <summary>How many statements each pooled connection keeps prepared (the least used is replaced first).</summary>
    internal const int AutoPrepared = 128;

    public Task VerifyAsync(AtelierDb db, DatabaseOptions options, CancellationToken ct) => Task.CompletedTask;

    public string SkipLocked => " FOR UPDATE SKIP LOCKED";

    // Written as a CASE, not as "<> ALL (the units' agents)": the planner takes "<> ALL" of an array it cannot see for a
    // filter that passes almost no row (about one queued job in 2,600), so for each of the claim's candidates it chose
    // to read and sort every queued job rather than read an index in order and stop at the first row that passes; a
    // backlog of thousands made every claim read them all. Of a CASE it assumes nothing so extreme, and the index in
    // order wins, whatever the statistics say. The two agree on every value (the array holds no null).
    public string AgentHasNoUnit => "CASE WHEN \"AgentId\" = ANY (ARRAY(SELECT u.\"AgentId\" FROM computing_units u WHERE u.\"AgentId\" IS NOT NULL)) THEN FALSE ELSE TRUE END";

    public bool ChainsWrites => true;

    public bool Notifies => true;

    public async Task LockRowsAsync(AtelierDb db, FormattableString rows, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync(FormattableStringFactory.Create(rows.Format + " FOR UPDATE", rows.GetArguments()), ct);

    public async Task NotifyAsync(AtelierDb db, string channel, string payload, CancellationToken ct) =>
        await db.Database.ExecuteSqlAsync($"SELECT pg_notify({channel}, {payload})", ct);

    public async Task NotifyManyAsync(AtelierDb db, IReadOnlyList<(string Channel, string Payload)> notes, CancellationToken ct)
    {
        // One statement, its own transaction: set_config(…, true) lasts until that transaction's end, so its commit (an
        // XID's commit record, since NOTIFY takes one) does not wait for the WAL to be flushed.
        var channels = notes.Select(n => n.Channel).ToArray();
        var payloads = notes.Select(n => n.Payload).ToArray();
        await db.Database.ExecuteSqlAsync(
            $"SELECT pg_notify(n.c, n.p) FROM (SELECT set_config('synchronous_commit', 'off', true)) AS s, unnest({channels}::text[], {payloads}::text[]) AS n(c, p)", ct);
    }

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
