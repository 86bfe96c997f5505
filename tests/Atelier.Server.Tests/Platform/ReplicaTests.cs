using System.Net;
using System.Text.Json;
using Atelier.Contracts.Errors;
using Atelier.Data;
using Atelier.Server.Tests.Infrastructure;
using Npgsql;

namespace Atelier.Server.Tests.Platform;

/// <summary>
/// Several replicas (issue 15, item 4), within one server on the suite's database: named locks taken from outside as an
/// operator would (docs/replicas.md), an API operation that cannot take its lock in time answering
/// <c>s_common_lockfail</c> 503 with <c>Retry-After</c>, and leader election as <c>GET /api/v1/platform/replica</c> shows it.
/// The two-process failover is in <see cref="Processes.ReplicaCrashTests"/>.
/// </summary>
public class ReplicaTests
{
    private static readonly Dictionary<string, string> Fast = new()
    {
        ["Atelier:Coordination:LeaderCheckSeconds"] = "1",
        ["Atelier:Coordination:LockWaitSeconds"] = "1",
        ["Atelier:Coordination:LockRetryAfterSeconds"] = "3",
        ["Atelier:Functions:LocalStartTimeoutSeconds"] = "60",
        ["Atelier:Functions:LocalStopGraceSeconds"] = "2",
    };

    /// <summary>What <c>GET /api/v1/platform/replica</c> answers, with the body for the fields a test looks at once.</summary>
    private sealed record Replica(bool Leader, long Term, string Id, JsonElement Json);

    private static async Task<Replica> ReplicaAsync(TestHost host)
    {
        var r = (await host.Admin().GetAsync("/api/v1/platform/replica")).Ok();
        return new Replica(r.GetProperty("isLeader").GetBoolean(), r.GetProperty("term").GetInt64(), r.GetProperty("id").GetString()!, r);
    }

    [Fact]
    public async Task AdvisoryKey_IsTheDocumentedHash_AndSqlComputesTheSameKey()
    {
        // The first eight bytes of SHA-256("atelier:leader"), b0ad4e0f49b02591, as a signed big-endian integer.
        Assert.Equal(unchecked((long)0xb0ad4e0f49b02591UL), DatabaseLocks.AdvisoryKey("atelier:leader"));
        await using var db = await TestDatabase.CreateAsync();
        string[] names = ["atelier:leader", "function:fn_0123456789:versions", "model-file:mf_é:download"];
        if (db.Provider == "postgres")
        {
            await using var conn = new NpgsqlConnection(db.ConnectionString);
            await conn.OpenAsync();
            foreach (var name in names)
            {
                await using var cmd = new NpgsqlCommand($"SELECT {DatabaseLocks.AdvisoryKeySql}", conn) { Parameters = { new() { Value = name } } };
                Assert.Equal(DatabaseLocks.AdvisoryKey(name), (long)(await cmd.ExecuteScalarAsync())!);
            }
        }
        else
        {
            // SQLite: the lock file beside the database, its name percent-encoded.
            var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(db.ConnectionString).DataSource;
            Assert.Equal(Path.Combine(file + ".locks", "atelier%3Aleader"), DatabaseLocks.LockFile(file, "atelier:leader"));
            Assert.All(names, n => Assert.Equal(OutsideLock.FileOf(db, n), DatabaseLocks.LockFile(file, n)));
        }
    }

    [Fact]
    public async Task PublishVersion_VersionsLockHeldOutside_Answers503LockFailWithRetryAfter_ThenPublishesOnceReleased()
    {
        await using var host = await TestHost.StartAsync(Fast);
        var world = await Scenario.NewTenantAsync(host);
        var admin = world.AdminOf(host);
        (await admin.PostAsync("/api/v1/services", new { name = "locks" })).Created();
        var id = (await admin.PostAsync("/api/v1/services/locks/functions", FunctionInstance.Open("pub"))).Created().GetProperty("id").GetString()!;
        const string versions = "/api/v1/services/locks/functions/pub/versions";

        await using (var held = await OutsideLock.TakeAsync(host.Database, $"function:{id}:versions"))
        {
            var refused = await admin.PostAsync(versions, new { description = "while locked" });
            var error = refused.Error(ErrorCatalog.s_common_lockfail, 503);
            Assert.Equal(ErrCodes.LockBusy, error.GetProperty("errCode").GetString());
            Assert.Equal("3", refused.Headers["Retry-After"]);
            Assert.Equal(0, (await admin.GetAsync(versions)).Ok().GetProperty("total").GetInt32());
        }

        Assert.Equal(1, (await admin.PostAsync(versions, new { description = "released" })).Created().GetProperty("versionId").GetInt32());

        // Three publishes at once: the lock takes them one after the other. A publish starts the version's instance, which
        // may take longer than the 1 s bound, so a later one may be refused; those published never share a number.
        var all = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => admin.PostAsync(versions, new { })));
        var published = all.Where(r => r.Status == HttpStatusCode.Created).Select(r => r.Created().GetProperty("versionId").GetInt32()).Order().ToList();
        Assert.All(all.Where(r => r.Status != HttpStatusCode.Created), r => Assert.Equal(ErrCodes.LockBusy,
            r.Error(ErrorCatalog.s_common_lockfail, 503).GetProperty("errCode").GetString()));
        Assert.Equal(Enumerable.Range(2, published.Count), published);
        Assert.Equal(1 + published.Count, (await admin.GetAsync(versions)).Ok().GetProperty("total").GetInt32());
    }

    [Fact]
    public async Task Replica_OneServer_LeadsInTermOne_OnlyForThePlatformAdminToSee()
    {
        await using var host = await TestHost.StartAsync(Fast);
        var replica = await ReplicaAsync(host);
        Assert.True(replica.Leader);
        Assert.Equal(1, replica.Term);
        Assert.Contains($":{Environment.ProcessId}:", replica.Id, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.String, replica.Json.GetProperty("leaderSince").ValueKind);
        Assert.Equal(JsonValueKind.String, replica.Json.GetProperty("startedAt").ValueKind);

        var world = await Scenario.NewTenantAsync(host);
        (await world.AdminOf(host).GetAsync("/api/v1/platform/replica")).Error(ErrorCatalog.b_session_tokenforbidden, 403);
        Assert.Equal(HttpStatusCode.Unauthorized, (await host.Client.GetAsync("/api/v1/platform/replica")).Status);
    }

    [Fact]
    public async Task Leadership_LeaderLockHeldOutside_NoReplicaLeads_UntilItIsReleased()
    {
        await using var db = await TestDatabase.CreateAsync();
        var held = await OutsideLock.TakeAsync(db, "atelier:leader");
        await using var host = await TestHost.StartAsync(Fast, database: db);
        try
        {
            var replica = await ReplicaAsync(host);
            Assert.False(replica.Leader);
            Assert.Equal(0, replica.Term);
            Assert.Equal(JsonValueKind.Null, replica.Json.GetProperty("leaderSince").ValueKind);
        }
        finally
        {
            await held.DisposeAsync();
        }

        await Eventually.UntilAsync(async () => (await ReplicaAsync(host)).Leader, "the replica leads once the lock is free");
        Assert.Equal(1, (await ReplicaAsync(host)).Term);
        // It holds the lock now: nobody else can take it.
        Assert.Null(await OutsideLock.TryTakeAsync(db, "atelier:leader"));
    }

    /// <summary>
    /// PostgreSQL: the leader's lock connection is ended behind its back (an operator's <c>pg_terminate_backend</c>); the
    /// leader notices at its next check, stops leading, and takes the lock again in a new term. SQLite: a file lock is not
    /// lost while its process lives: it is held for as long as the server runs and free once it stops.
    /// </summary>
    [Fact]
    public async Task Leader_LockLostOrKept_AsItsDatabaseDoes()
    {
        await using var db = await TestDatabase.CreateAsync();
        var host = await TestHost.StartAsync(Fast, database: db);
        try
        {
            Assert.True((await ReplicaAsync(host)).Leader);
            if (db.Provider == "postgres")
            {
                await using (var conn = new NpgsqlConnection(db.ConnectionString))
                {
                    await conn.OpenAsync();
                    await using var kill = new NpgsqlCommand(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'atelier lock atelier:leader'", conn);
                    Assert.Equal(1L, await kill.ExecuteScalarAsync());
                }

                await Eventually.UntilAsync(async () => await ReplicaAsync(host) is { Leader: true, Term: 2 }, "the leader noticed its lost lock and leads again in term 2");
            }
            else
            {
                Assert.Null(await OutsideLock.TryTakeAsync(db, "atelier:leader"));
                Assert.True(File.Exists(OutsideLock.FileOf(db, "atelier:leader")));
            }
        }
        finally
        {
            await host.DisposeAsync();
        }

        // A stopped server let its lock go.
        await using var free = await OutsideLock.TryTakeAsync(db, "atelier:leader");
        Assert.NotNull(free);
    }
}
