using System.Net;
using System.Security.Cryptography;
using Atelier.Core.Security;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Processes;

/// <summary>
/// Several server replicas as real processes on the suite's database, the leader killed with SIGKILL. PostgreSQL: two
/// <c>atelier serve</c> on one database and one object store folder; exactly one leads; the leader dies; the other
/// leads within a deadline, and every job submitted before the kill ends, run by a worker connected to the survivor.
/// SQLite, one server per database file (docs/replicas.md): the one server leads; once it is killed its lock file is
/// free (the OS dropped the lock with the process), and the next server on the same file leads and ends every job
/// submitted before the kill. Bounded: 40 jobs, loopback only.
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

    [Fact]
    public async Task LeaderKilled_AnotherServerLeads_AndNoJobIsLost()
    {
        await using var db = await TestDatabase.CreateAsync();
        var adminKey = Secrets.Issue(Secrets.PlatformKeyPrefix);
        var masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var servers = new List<Server>();
        var workers = new List<AtelierProcess>();

        // Each replica has a data folder of its own; they share the database, the object store and the master key.
        async Task<Server> StartServerAsync(string name)
        {
            var process = AtelierProcess.Start(db.Folder, "serve", "--Atelier:Server:Urls=http://127.0.0.1:0",
                $"--Atelier:Server:DataDirectory={Path.Combine(db.Folder, name)}", $"--Atelier:Storage:LocalPath={Path.Combine(db.Folder, "objects")}",
                $"--Atelier:Database:Provider={db.Provider}", $"--Atelier:Database:ConnectionString={db.ConnectionString}",
                $"--Atelier:Security:MasterKey={masterKey}", $"--Atelier:Auth:BootstrapAdminKey={adminKey}",
                "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
                "--Atelier:Coordination:LeaderCheckSeconds=1", "--Atelier:Jobs:LeaseSeconds=4", "--Atelier:Jobs:RescueIntervalSeconds=1",
                "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information",
                "--Logging:LogLevel:Atelier.Core.Coordination=Information");
            var http = new HttpClient { BaseAddress = await process.ListeningAddressAsync(TimeSpan.FromSeconds(120)), Timeout = TimeSpan.FromSeconds(30) };
            var server = new Server(process, new ApiClient(http).With(adminKey, "op-replicas"), http);
            servers.Add(server);
            return server;
        }

        AtelierProcess StartWorker(Server server, string workerKey)
        {
            var worker = AtelierProcess.Start(db.Folder, "worker", "--server", server.Http.BaseAddress!.ToString(), "--token", workerKey,
                "--engine", "noop=500", "--slots", "2", "--id", $"replica-worker-{workers.Count}");
            workers.Add(worker);
            return worker;
        }

        static async Task<(bool Leader, long Term, string Id)> ReplicaAsync(Server s)
        {
            var r = (await s.Admin.GetAsync("/api/v1/platform/replica")).Ok();
            return (r.GetProperty("isLeader").GetBoolean(), r.GetProperty("term").GetInt64(), r.GetProperty("id").GetString()!);
        }

        try
        {
            var first = await StartServerAsync("replica-a");
            if (db.Provider == "postgres")
            {
                await StartServerAsync("replica-b");
            }

            // Exactly one replica leads (on SQLite, the one server).
            var states = await Eventually.ValueAsync(async () => await Task.WhenAll(servers.Select(ReplicaAsync)), s => s.Count(r => r.Leader) == 1,
                "exactly one replica leads");
            Assert.Equal(servers.Count, states.Select(s => s.Id).Distinct().Count());
            var leader = servers[Array.FindIndex(states, s => s.Leader)];
            Assert.Equal(1, states.Single(s => s.Leader).Term);

            var world = await Scenario.NewTenantAsync(leader.Admin);
            var workerKey = (await leader.Admin.PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
            var app = new ApiClient(leader.Http).With(world.AppToken);
            StartWorker(leader, workerKey);
            var ids = new List<string>();
            for (var i = 0; i < Jobs; i++)
            {
                ids.Add((await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = $"replica {i}", steps = 5 } }))
                    .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!);
            }

            async Task<long> CountAsync(ApiClient client, string state) =>
                (await client.GetAsync($"/api/v1/agents/default/jobs?state={state}&pageSize=1")).Ok().GetProperty("total").GetInt64();

            // The leader dies mid-run, its worker with it (the machine went down): jobs done, running and queued.
            await Eventually.UntilAsync(async () => await CountAsync(app, "succeeded") >= 6, "some jobs succeeded before the kill", TimeSpan.FromSeconds(120));
            Assert.True(await CountAsync(app, "succeeded") < Jobs);
            await leader.Process.KillAsync();
            await workers[0].KillAsync();

            Server survivor;
            if (db.Provider == "postgres")
            {
                survivor = servers.Single(s => s != leader);
                await Eventually.UntilAsync(async () => (await ReplicaAsync(survivor)).Leader, "the surviving replica leads", TimeSpan.FromSeconds(60));
            }
            else
            {
                // The killed process's lock is gone with it: the lock file can be taken, then the next server leads.
                await using (await OutsideLock.TakeAsync(db, "atelier:leader"))
                {
                }

                survivor = await StartServerAsync("replica-next");
                Assert.True((await ReplicaAsync(survivor)).Leader);
            }

            Assert.Equal(1, (await ReplicaAsync(survivor)).Term);
            Assert.Contains("is the leader (term 1)", survivor.Process.Output, StringComparison.Ordinal);

            // None lost: with a worker connected to the survivor, every job submitted before the kill succeeds.
            StartWorker(survivor, workerKey);
            var survivorApp = new ApiClient(survivor.Http).With(world.AppToken);
            await Eventually.UntilAsync(async () => await CountAsync(survivorApp, "succeeded") == Jobs, "every job submitted before the kill succeeded",
                TimeSpan.FromSeconds(180), TimeSpan.FromMilliseconds(250));
            Assert.Equal(Jobs, (await survivorApp.GetAsync("/api/v1/agents/default/jobs?pageSize=1")).Ok().GetProperty("total").GetInt64());
            foreach (var id in ids)
            {
                Assert.Equal("succeeded", (await survivorApp.GetAsync($"/api/v1/agents/default/jobs/{id}")).Ok().GetProperty("state").GetString());
            }
        }
        finally
        {
            foreach (var w in workers)
            {
                await w.DisposeAsync();
            }

            foreach (var s in servers)
            {
                await s.DisposeAsync();
            }
        }
    }
}
