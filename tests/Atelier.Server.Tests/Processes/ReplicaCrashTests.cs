using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Atelier.Core.Coordination;
using Atelier.Core.Security;
using Atelier.Data;
using Atelier.Server.Tests.Infrastructure;
using Npgsql;

namespace Atelier.Server.Tests.Processes;

/// <summary>
/// Several server replicas as real processes on the suite's database, the leader killed with SIGKILL. PostgreSQL: two
/// <c>atelier serve</c> on one database and one object store folder; exactly one leads; the leader dies; the other
/// leads within a deadline, and every job submitted before the kill ends, run by a worker connected to the survivor.
/// SQLite, one server per database file (docs/replicas.md): the one server leads; once it is killed its lock file is
/// free (the OS dropped the lock with the process), and the next server on the same file leads and ends every job
/// submitted before the kill. The same with a computing unit on the <c>local</c> region, whose workers the leader runs
/// and the next leader starts on itself. Bounded: 40 jobs (24 for the unit), loopback only.
/// </summary>
public class ReplicaCrashTests
{
    private const int Jobs = 40;

    private sealed record Server(AtelierProcess Process, ApiClient Admin, HttpClient Http) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Process.DisposeAsync();
            Http.Dispose();
        }
    }

    /// <summary>
    /// The replicas of one test: each with a data folder of its own; they share the database, the object store and the
    /// master key. Workers started by hand are kept here too; everything is killed at the end.
    /// </summary>
    private sealed class Replicas(TestDatabase db, params string[] settings) : IAsyncDisposable
    {
        private readonly string _adminKey = Secrets.Issue(Secrets.PlatformKeyPrefix);
        private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

        public List<Server> Servers { get; } = [];

        public List<AtelierProcess> Workers { get; } = [];

        /// <param name="extra">Settings of this replica alone, over the shared ones.</param>
        public async Task<Server> StartServerAsync(string name, params string[] extra)
        {
            var process = AtelierProcess.Start(db.Folder, [
                "serve", "--Atelier:Server:Urls=http://127.0.0.1:0",
                $"--Atelier:Server:DataDirectory={Path.Combine(db.Folder, name)}", $"--Atelier:Storage:LocalPath={Path.Combine(db.Folder, "objects")}",
                $"--Atelier:Database:Provider={db.Provider}", $"--Atelier:Database:ConnectionString={db.ConnectionString}",
                $"--Atelier:Security:MasterKey={_masterKey}", $"--Atelier:Auth:BootstrapAdminKey={_adminKey}",
                "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
                "--Atelier:Coordination:LeaderCheckSeconds=1", "--Atelier:Jobs:LeaseSeconds=4", "--Atelier:Jobs:RescueIntervalSeconds=1",
                "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
                "--Logging:LogLevel:Atelier.Core.Coordination=Information", .. settings, .. extra]);
            var http = new HttpClient { BaseAddress = await process.ListeningAddressAsync(TimeSpan.FromSeconds(120)), Timeout = TimeSpan.FromSeconds(30) };
            var server = new Server(process, new ApiClient(http).With(_adminKey, "op-replicas"), http);
            Servers.Add(server);
            return server;
        }

        public AtelierProcess StartWorker(Server server, string workerKey)
        {
            var worker = AtelierProcess.Start(db.Folder, "worker", "--server", server.Http.BaseAddress!.ToString(), "--token", workerKey,
                "--engine", "noop=500", "--slots", "2", "--id", $"replica-worker-{Workers.Count}");
            Workers.Add(worker);
            return worker;
        }

        /// <summary>Exactly one replica leads (on SQLite, the one server): that one, with every replica's state.</summary>
        public async Task<Server> LeaderAsync()
        {
            var states = await Eventually.ValueAsync(async () => await Task.WhenAll(Servers.Select(ReplicaAsync)), s => s.Count(r => r.Leader) == 1,
                "exactly one replica leads");
            Assert.Equal(Servers.Count, states.Select(s => s.Id).Distinct().Count());
            Assert.Equal(1, states.Single(s => s.Leader).Term);
            return Servers[Array.FindIndex(states, s => s.Leader)];
        }

        /// <summary>
        /// After the leader was killed: on PostgreSQL the other replica, once it leads; on SQLite (one server per file) the
        /// killed server's lock is gone with it, so the lock file can be taken, and the next server on the file leads.
        /// </summary>
        public async Task<Server> SurvivorAsync(Server killed)
        {
            if (db.Provider == "postgres")
            {
                var survivor = Servers.Single(s => s != killed);
                await Eventually.UntilAsync(async () => (await ReplicaAsync(survivor)).Leader, "the surviving replica leads", TimeSpan.FromSeconds(60));
                return survivor;
            }

            await using (await OutsideLock.TakeAsync(db, "atelier:leader"))
            {
            }

            var next = await StartServerAsync("replica-next");
            Assert.True((await ReplicaAsync(next)).Leader);
            return next;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var w in Workers)
            {
                await w.DisposeAsync();
            }

            foreach (var s in Servers)
            {
                await s.DisposeAsync();
            }
        }
    }

    private static async Task<(bool Leader, long Term, string Id)> ReplicaAsync(Server s)
    {
        var r = (await s.Admin.GetAsync("/api/v1/platform/replica")).Ok();
        return (r.GetProperty("isLeader").GetBoolean(), r.GetProperty("term").GetInt64(), r.GetProperty("id").GetString()!);
    }

    [Fact]
    public async Task LeaderKilled_AnotherServerLeads_AndNoJobIsLost()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var replicas = new Replicas(db);
        await replicas.StartServerAsync("replica-a");
        if (db.Provider == "postgres")
        {
            await replicas.StartServerAsync("replica-b");
        }

        var leader = await replicas.LeaderAsync();
        var world = await Scenario.NewTenantAsync(leader.Admin);
        var workerKey = (await leader.Admin.PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
        var app = new ApiClient(leader.Http).With(world.AppToken);
        var worker = replicas.StartWorker(leader, workerKey);
        var ids = new List<string>();
        for (var i = 0; i < Jobs; i++)
        {
            ids.Add((await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = $"replica {i}", steps = 5 } }))
                .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!);
        }

        // The leader dies mid-run, its worker with it (the machine went down): jobs done, running and queued.
        await Eventually.UntilAsync(async () => await CountAsync(app, "default", "succeeded") >= 6, "some jobs succeeded before the kill", TimeSpan.FromSeconds(120));
        Assert.True(await CountAsync(app, "default", "succeeded") < Jobs);
        await leader.Process.KillAsync();
        await worker.KillAsync();

        var survivor = await replicas.SurvivorAsync(leader);
        Assert.Equal(1, (await ReplicaAsync(survivor)).Term);
        // (The log line is read from the process's output as it comes: wait for it rather than look once.)
        await survivor.Process.WaitForOutputAsync("is the leader (term 1)", Eventually.DefaultDeadline);

        // None lost: with a worker connected to the survivor, every job submitted before the kill succeeds.
        replicas.StartWorker(survivor, workerKey);
        var survivorApp = new ApiClient(survivor.Http).With(world.AppToken);
        await Eventually.UntilAsync(async () => await CountAsync(survivorApp, "default", "succeeded") == Jobs, "every job submitted before the kill succeeded",
            TimeSpan.FromSeconds(180), TimeSpan.FromMilliseconds(250));
        Assert.Equal(Jobs, (await survivorApp.GetAsync("/api/v1/agents/default/jobs?pageSize=1")).Ok().GetProperty("total").GetInt64());
        foreach (var id in ids)
        {
            Assert.Equal("succeeded", (await survivorApp.GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());
        }
    }

    /// <summary>
    /// A computing unit on the <c>local</c> region, autoscaled from 0: its replicas are <c>atelier worker</c> children of
    /// the leader. The leader is killed with SIGKILL (alone: its guardian, not the test, stops its workers); the next
    /// leader (the other replica on PostgreSQL, the next server on the file on SQLite) applies the unit on its own local
    /// backend, its workers run what was left, and every job succeeds. Each decision is stored once, by the leader of its
    /// moment: those before the new leader led by the killed one, every one after by the new leader in its own term, and
    /// read in order they chain (each one's <c>from</c> is the previous one's <c>to</c>), from 0 back to 0.
    /// </summary>
    [Fact]
    public async Task LeaderKilled_TheNextLeaderRunsTheUnitsWorkers_EachDecisionStoredOnce_AndNoJobIsLost()
    {
        const int capacity = 2;
        const int unitJobs = 40;
        await using var db = await TestDatabase.CreateAsync();
        await using var replicas = new Replicas(db, "--Atelier:Agents:ScaleIntervalSeconds=1", "--Atelier:Functions:LocalStartTimeoutSeconds=60",
            "--Atelier:Functions:LocalStopGraceSeconds=2", "--Logging:LogLevel:Atelier.Core.Agents=Information");
        await replicas.StartServerAsync("replica-a");
        if (db.Provider == "postgres")
        {
            await replicas.StartServerAsync("replica-b");
        }

        var leader = await replicas.LeaderAsync();
        var leaderId = (await ReplicaAsync(leader)).Id;
        var world = await Scenario.NewTenantAsync(leader.Admin);
        // 1.5 s a job: 40 jobs are 30 s of work for two replicas, more than the slowest start of the second worker this
        // test allows, so jobs are still queued when the leader is killed and the new leader has work to scale for.
        var (agent, units, unit, workload) = await CreateUnitAsync(leader, world, capacity, engine: "noop=1500");

        var app = new ApiClient(leader.Http).With(world.AppToken);
        var ids = new List<string>();
        for (var i = 0; i < unitJobs; i++)
        {
            ids.Add((await app.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = $"unit {i}", steps = 2, width = 64, height = 64 } }))
                .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!);
        }

        // The leader's autoscaler started the unit's workers as its own children, and they ran some of the jobs.
        await Eventually.UntilAsync(async () => await CountAsync(app, agent, "succeeded") >= 4, "the leader's unit workers ran some jobs", TimeSpan.FromSeconds(120));
        // A decision is stored once its backend call has returned, and a call that starts workers returns when all of them
        // answer: the first can run jobs while the second still starts. Killed then, the leader would leave no decision (the
        // next one starts from the stored replicas, which is right, but not what this test is about): wait for it.
        var leaderAdmin = new ApiClient(leader.Http).With(world.AdminToken, "op-tenant");
        await Eventually.ValueAsync(async () => (await leaderAdmin.GetAsync($"{units}/{unit}/scaling")).Ok(),
            d => d.GetProperty("decisions").EnumerateArray().Any(x => x.GetProperty("leader").GetString() == leaderId && x.GetProperty("applied").GetBoolean()
                                                                      && x.GetProperty("to").GetInt32() > x.GetProperty("from").GetInt32()),
            "the leader's scale-up decision stored", TimeSpan.FromSeconds(120));
        var before = WorkersOf(workload, leader.Process.Pid);
        Assert.NotEmpty(before);
        Assert.InRange(before.Count, 1, capacity);
        Assert.True(await CountAsync(app, agent, "succeeded") < unitJobs);

        // SIGKILL to the leader alone: no shutdown code of its own runs; its guardian stops its workers.
        await leader.Process.KillAloneAsync();
        await Eventually.UntilAsync(() => before.All(pid => !ProcessState.IsRunning(pid)), "the killed leader's unit workers stopped", TimeSpan.FromSeconds(60));

        var survivor = await replicas.SurvivorAsync(leader);
        var (_, term, survivorId) = await ReplicaAsync(survivor);
        Assert.NotEqual(leaderId, survivorId);
        var leadsSince = Utc((await survivor.Admin.GetAsync("/api/v1/platform/replica")).Ok().GetProperty("leaderSince").GetDateTime());
        var survivorAdmin = new ApiClient(survivor.Http).With(world.AdminToken, "op-tenant");
        var survivorApp = new ApiClient(survivor.Http).With(world.AppToken);

        // The new leader's autoscaler applies the unit on its own local backend: its replicas are ready there.
        await Eventually.ValueAsync(async () => (await survivorAdmin.GetAsync($"{units}/{unit}")).Ok(),
            u => u.GetProperty("function").GetProperty("readyReplicas") is { ValueKind: JsonValueKind.Number } r && r.GetInt32() >= 1,
            "the unit's replicas ready on the new leader", TimeSpan.FromSeconds(120));
        var after = WorkersOf(workload, survivor.Process.Pid);
        Assert.NotEmpty(after);
        Assert.Empty(after.Intersect(before));

        // None lost: every job ends succeeded; meanwhile the new leader never runs more of the unit's workers than the pool has.
        await Eventually.UntilAsync(async () =>
        {
            Assert.InRange(WorkersOf(workload, survivor.Process.Pid).Count, 0, capacity);
            return await CountAsync(survivorApp, agent, "succeeded") == unitJobs;
        }, "every job of the unit's agent succeeded", TimeSpan.FromSeconds(180), TimeSpan.FromMilliseconds(250));
        foreach (var id in ids)
        {
            Assert.Equal("succeeded", (await survivorApp.GetAsync($"/api/v1/agents/{agent}/jobs/{id}")).Ok().GetProperty("state").GetString());
        }

        // Idle, the unit goes back to zero on the new leader's decision, and its workers stop.
        var scaling = await Eventually.ValueAsync(async () => (await survivorAdmin.GetAsync($"{units}/{unit}/scaling")).Ok(),
            d => d.GetProperty("replicas").GetInt32() == 0, "the unit back to zero replicas after its idle seconds", TimeSpan.FromSeconds(60));
        await Eventually.UntilAsync(() => WorkersOf(workload, survivor.Process.Pid).Count == 0, "the new leader's unit workers stopped at zero");

        var (decisions, shown) = StoredOnce(scaling);

        // Each by the leader of its moment: the killed one (its term 1) until the new one led; from then on, the new leader in its term only.
        Assert.All(decisions, d => Assert.True(d.Leader == leaderId || d.Leader == survivorId, $"a decision by neither leader:\n{shown}"));
        // (The new leader took the lock only once the killed one's session was gone with its process.)
        Assert.All(decisions.Where(d => d.Leader == leaderId), d => Assert.True(d.Term == 1 && d.At < leadsSince, $"a decision of the killed leader after the new one led:\n{shown}"));
        Assert.All(decisions.Where(d => d.At >= leadsSince), d => Assert.True(d.Leader == survivorId && d.Term == term, $"a decision after the takeover not by the new leader:\n{shown}"));
        Assert.All(decisions.Where(d => d.Leader == survivorId), d => Assert.True(d.Term == term && d.At >= leadsSince, $"a decision of the new leader before it led:\n{shown}"));
        Assert.Contains(decisions, d => d.Leader == leaderId && d.Applied && d.To > d.From);
        Assert.Contains(decisions, d => d.Leader == survivorId && d.Term == term && d.Applied && d.To == 0);
    }

    /// <summary>
    /// PostgreSQL: the leader's lock session is ended behind its back (<c>pg_terminate_backend</c>, as an operator or a
    /// database restart would) while its own next check may be up to a minute away (60 s, the most allowed), and the other
    /// replica takes the lock: for a while both would lead. The old leader asks its lock at its next autoscaler pass, finds
    /// it gone and stops leading there: it starts none of the unit's workers and stores no decision; the new leader scales
    /// the unit from 0 and back, every decision its own and stored once, and every job succeeds. SQLite (one server per
    /// file): a file lock is not lost while its process lives; the one leader asks it at each pass, keeps leading, and
    /// scales the unit with every decision its own.
    /// </summary>
    [Fact]
    public async Task LeaderLockLost_TheOldLeaderAsksBeforeItScales_AndStopsLeading_SoEachDecisionIsStoredOnce()
    {
        const int capacity = 2;
        const int unitJobs = 8;
        await using var db = await TestDatabase.CreateAsync();
        await using var replicas = new Replicas(db, "--Atelier:Agents:ScaleIntervalSeconds=1", "--Atelier:Functions:LocalStartTimeoutSeconds=60",
            "--Atelier:Functions:LocalStopGraceSeconds=2", "--Logging:LogLevel:Atelier.Core.Agents=Information");
        var first = await replicas.StartServerAsync("replica-a", "--Atelier:Coordination:LeaderCheckSeconds=60");
        var second = db.Provider == "postgres" ? await replicas.StartServerAsync("replica-b") : null;
        Assert.Same(first, await replicas.LeaderAsync());
        var world = await Scenario.NewTenantAsync(first.Admin);
        var (agent, units, unit, workload) = await CreateUnitAsync(first, world, capacity);

        var leader = first;
        if (second is not null)
        {
            await using (var conn = new NpgsqlConnection(db.ConnectionString))
            {
                await conn.OpenAsync();
                // The session that holds the granted lock, not every session named for it: the other replica's try for
                // leadership opens one with the same name (and closes it when refused). A bigint advisory lock shows in
                // pg_locks as its high and low 32 bits (classid, objid) with objsubid 1.
                var key = DatabaseLocks.AdvisoryKey(Leadership.LockName);
                await using var end = new NpgsqlCommand(
                    """
                    SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                    WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                      AND l.classid = ($1)::oid AND l.objid = ($2)::oid
                    """, conn);
                end.Parameters.Add(new NpgsqlParameter { Value = (key >> 32) & 0xFFFFFFFFL });
                end.Parameters.Add(new NpgsqlParameter { Value = key & 0xFFFFFFFFL });
                Assert.Equal(1L, await end.ExecuteScalarAsync());
            }

            await Eventually.UntilAsync(async () => (await ReplicaAsync(second)).Leader, "the other replica took the leader lock", TimeSpan.FromSeconds(60));
            leader = second;
        }
        else
        {
            Assert.Null(await OutsideLock.TryTakeAsync(db, "atelier:leader"));
        }

        var (_, term, leaderId) = await ReplicaAsync(leader);
        var leadsSince = Utc((await leader.Admin.GetAsync("/api/v1/platform/replica")).Ok().GetProperty("leaderSince").GetDateTime());
        var app = new ApiClient(leader.Http).With(world.AppToken);
        for (var i = 0; i < unitJobs; i++)
        {
            (await app.PostAsync($"/api/v1/agents/{agent}/jobs", new { input = new { prompt = $"unit {i}", steps = 2, width = 64, height = 64 } })).Ok(HttpStatusCode.Accepted);
        }

        // Every job succeeds on the leader's workers; the old leader never runs one, and the leader never more than the pool has.
        await Eventually.UntilAsync(async () =>
        {
            if (second is not null)
            {
                Assert.Empty(WorkersOf(workload, first.Process.Pid));
            }

            Assert.InRange(WorkersOf(workload, leader.Process.Pid).Count, 0, capacity);
            return await CountAsync(app, agent, "succeeded") == unitJobs;
        }, "every job of the unit's agent succeeded", TimeSpan.FromSeconds(180), TimeSpan.FromMilliseconds(250));

        var old = await ReplicaAsync(first);
        Assert.Equal(1, old.Term);
        if (second is not null)
        {
            // It found its lock gone and does not lead any more.
            Assert.False(old.Leader);
            await first.Process.WaitForOutputAsync("is no longer the leader (term 1)", Eventually.DefaultDeadline);
        }
        else
        {
            Assert.True(old.Leader);
        }

        var scaling = await Eventually.ValueAsync(async () => (await new ApiClient(leader.Http).With(world.AdminToken, "op-tenant").GetAsync($"{units}/{unit}/scaling")).Ok(),
            d => d.GetProperty("replicas").GetInt32() == 0, "the unit back to zero replicas after its idle seconds", TimeSpan.FromSeconds(60));
        var (decisions, shown) = StoredOnce(scaling);
        Assert.All(decisions, d => Assert.True(d.Leader == leaderId && d.Term == term && d.At >= leadsSince, $"a decision not by the leader of its moment:\n{shown}"));
        Assert.Contains(decisions, d => d.Applied && d.To > d.From);
        Assert.Empty(WorkersOf(workload, first.Process.Pid));
    }

    /// <summary>A tenant's unit on the <c>local</c> region, autoscaled from 0 within a pool of <paramref name="capacity"/> one-slot replicas (noop engine, 500 ms a job unless <paramref name="engine"/> says otherwise).</summary>
    private static async Task<(string Agent, string Units, string Unit, string Workload)> CreateUnitAsync(Server server, TenantWorld world, int capacity,
        string engine = "noop=500")
    {
        var admin = new ApiClient(server.Http).With(world.AdminToken, "op-tenant");
        var pool = (await server.Admin.PostAsync("/api/v1/platform/computing-pools", new
        {
            name = "replicas", tenantIds = new[] { world.TenantId },
            regions = new[] { new { region = "local", instanceTypes = new[] { new { name = "cpu", capacity, slotsPerReplica = 1 } } } },
        })).Created().GetProperty("id").GetString()!;
        var template = (await admin.PostAsync("/api/v1/scale-templates", new
        {
            name = "quick", minReplicas = 0, maxReplicas = capacity, scaleDownWindowSeconds = 2, idleSecondsBeforeZero = 4,
        })).Created().GetProperty("id").GetString()!;
        var agent = (await admin.PostAsync("/api/v1/agents", new { name = "painters" })).Created().GetProperty("id").GetString()!;
        var version = (await admin.PostAsync($"/api/v1/agents/{agent}/versions", new { versionName = "v1", image = "atelier/atelier:test", engine, autoScaleTemplateId = template }))
            .Created().GetProperty("id").GetString()!;
        var units = $"/api/v1/agents/{agent}/units";
        var created = (await admin.PostAsync(units, new { agentVersionId = version, computingPoolId = pool, region = "local", instanceType = "cpu", replicas = 0, autoscale = true }))
            .Created();
        return (agent, units, created.GetProperty("id").GetString()!, created.GetProperty("function").GetProperty("name").GetString()!);
    }

    private sealed record Decision(string Id, DateTime At, string Leader, long Term, int From, int To, bool Applied, string? Error);

    /// <summary>
    /// A unit's decisions, oldest first, with their text for messages; each stored once: one id each, never two for the
    /// unit by one leader in one term at one moment, none failed, and in order they chain from 0 back to 0 (each one's
    /// <c>from</c> is the one before's <c>to</c>): no change applied twice, none skipped.
    /// </summary>
    private static (List<Decision> Decisions, string Shown) StoredOnce(JsonElement scaling)
    {
        var rows = scaling.GetProperty("decisions").EnumerateArray().ToList();
        var decisions = rows
            .Select(d => new Decision(d.GetProperty("id").GetString()!, Utc(d.GetProperty("at").GetDateTime()), d.GetProperty("leader").GetString()!,
                d.GetProperty("term").GetInt64(), d.GetProperty("from").GetInt32(), d.GetProperty("to").GetInt32(), d.GetProperty("applied").GetBoolean(),
                d.GetProperty("error").GetString()))
            .OrderBy(d => d.At).ThenBy(d => d.Id, StringComparer.Ordinal).ToList();
        var shown = string.Join("\n", rows.Select(d => d.GetRawText()));
        Assert.All(decisions, d => Assert.True(d.Error is null, shown));
        Assert.Equal(decisions.Count, decisions.Select(d => d.Id).Distinct().Count());
        Assert.All(decisions.GroupBy(d => (d.Leader, d.Term, d.At)), g => Assert.True(g.Count() == 1, $"decisions stored twice:\n{shown}"));

        // (The API shows the newest 50: all of them here.)
        Assert.InRange(decisions.Count, 2, 49);
        Assert.Equal(0, decisions[0].From);
        Assert.Equal(0, decisions[^1].To);
        for (var i = 1; i < decisions.Count; i++)
        {
            Assert.True(decisions[i].From == decisions[i - 1].To, $"decision {decisions[i].Id} starts from {decisions[i].From}, the one before ended at {decisions[i - 1].To}:\n{shown}");
        }

        return (decisions, shown);
    }

    private static DateTime Utc(DateTime at) => at.Kind == DateTimeKind.Unspecified ? DateTime.SpecifyKind(at, DateTimeKind.Utc) : at.ToUniversalTime();

    /// <summary>The running <c>atelier worker</c> processes of a local workload whose server is <paramref name="serverPid"/> (their <c>--parent-pid</c>).</summary>
    private static List<int> WorkersOf(string workload, int serverPid) =>
        [.. ProcessState.WithArgument(workload + "-").Where(pid => ParentPidArgument(pid) == serverPid)];

    private static int? ParentPidArgument(int pid)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
            var at = Array.IndexOf(args, "--parent-pid");
            return at >= 0 && at + 1 < args.Length && int.TryParse(args[at + 1], out var parent) ? parent : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static async Task<long> CountAsync(ApiClient client, string agent, string state) =>
        (await client.GetAsync($"/api/v1/agents/{agent}/jobs?state={state}&pageSize=1")).Ok().GetProperty("total").GetInt64();
}
