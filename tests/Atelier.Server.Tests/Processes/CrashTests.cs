using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Atelier.Core.Security;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Processes;

/// <summary>
/// Crash safety with real processes on the suite's database (SQLite or PostgreSQL): 1,000 jobs, the worker killed with
/// SIGKILL mid-job, then the server killed mid-run, both restarted. Every job must end, none may be lost, none may
/// complete twice. Bounded: 1,000 jobs, at most four minutes, loopback only.
/// </summary>
public class CrashTests
{
    /// <summary><c>atelier serve</c>'s arguments for a server on <paramref name="baseUri"/> over the test's database, plus <paramref name="extra"/>.</summary>
    private static string[] Serve(TestDatabase db, Uri baseUri, string adminKey, params string[] extra) =>
    [
        "serve", $"--Atelier:Server:Urls={baseUri}", $"--Atelier:Server:DataDirectory={Path.Combine(db.Folder, "data")}",
        $"--Atelier:Database:Provider={db.Provider}", $"--Atelier:Database:ConnectionString={db.ConnectionString}",
        $"--Atelier:Auth:BootstrapAdminKey={adminKey}", "--Atelier:Embedded:DemoTenant=false", "--Atelier:Embedded:LocalWorker=false",
        "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Hosting.Lifetime=Information", .. extra,
    ];

    private const int Jobs = 1000;

    [Fact]
    public async Task ThousandJobs_WorkerAndServerKilled_EveryJobEndsExactlyOnce()
    {
        await using var db = await TestDatabase.CreateAsync();
        var port = AtelierProcess.FreePort();
        var adminKey = Secrets.Issue(Secrets.PlatformKeyPrefix);
        var baseUri = new Uri($"http://127.0.0.1:{port}");
        string[] ServeArgs() => Serve(db, baseUri, adminKey,
            "--Atelier:Jobs:LeaseSeconds=4", "--Atelier:Jobs:RescueIntervalSeconds=1", "--Logging:LogLevel:Atelier.Core.Jobs.WorkerService=Information");
        var servers = new List<AtelierProcess> { AtelierProcess.Start(db.Folder, ServeArgs()) };
        var workers = new List<AtelierProcess>();
        try
        {
            await servers[0].WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
            var api = new ApiClient(http);
            var world = await Scenario.NewTenantAsync(api.With(adminKey, "op-crash"));
            var workerKey = (await api.With(adminKey, "op-crash").PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
            AtelierProcess StartWorker() => AtelierProcess.Start(db.Folder, "worker", "--server", baseUri.ToString(), "--token", workerKey,
                "--engine", "noop=40", "--slots", "4", "--id", "crash-worker");
            workers.Add(StartWorker());
            var app = api.With(world.AppToken);

            // The client submits with an idempotency key per job and retries whatever goes wrong (the server dies meanwhile).
            var accepted = new ConcurrentDictionary<int, string>();
            var submitting = Task.WhenAll(Enumerable.Range(0, 8).Select(lane => Task.Run(async () =>
            {
                for (var i = lane; i < Jobs; i += 8)
                {
                    while (true)
                    {
                        try
                        {
                            var r = await app.WithHeader("Idempotency-Key", $"crash-{i}").PostAsync("/api/v1/predict/txt2img", new { prompt = $"job {i}", steps = 4 });
                            if (r.Status == HttpStatusCode.Accepted)
                            {
                                accepted[i] = r.Json.GetProperty("data").GetProperty("taskId").GetString()!;
                                break;
                            }
                        }
                        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                        {
                            // The server is down: try again.
                        }

                        await Task.Delay(200);
                    }
                }
            })));

            // Asked again while the server is down (being restarted), until it answers.
            async Task<long> CountAsync(string state) =>
                (await Eventually.ValueAsync(async () =>
                {
                    try
                    {
                        var r = await app.GetAsync($"/api/v1/agents/default/jobs?state={state}&pageSize=1");
                        return r.Status == HttpStatusCode.OK ? r.Json.GetProperty("data").GetProperty("total").GetInt64() : (long?)null;
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        return null;
                    }
                }, n => n is not null, $"the server answers the count of {state} jobs", TimeSpan.FromSeconds(180), TimeSpan.FromMilliseconds(200)))!.Value;

            Task WaitSucceededAsync(long n) =>
                Eventually.UntilAsync(async () => await CountAsync("succeeded") >= n, $"{n} jobs succeeded", TimeSpan.FromSeconds(180));

            // Kill the worker in the middle of its jobs (it holds four leases at any moment), and start another.
            await WaitSucceededAsync(150);
            Assert.True(await CountAsync("running") > 0);
            await workers[0].KillAsync();
            workers.Add(StartWorker());

            // Kill the server mid-run, with jobs queued and running and submissions under way; start it again on the same port.
            await WaitSucceededAsync(400);
            await servers[0].KillAsync();
            await Eventually.UntilAsync(() => AtelierProcess.PortIsFree(port), "the killed server's port is free again");
            servers.Add(AtelierProcess.Start(db.Folder, ServeArgs()));
            await servers[1].WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));

            await submitting.WaitAsync(TimeSpan.FromSeconds(120));
            await Eventually.UntilAsync(async () => await CountAsync("queued") + await CountAsync("running") == 0,
                "no job is left queued or running after the last submit", TimeSpan.FromSeconds(180));

            // None lost: every submitted job is there, under its key, and ended.
            Assert.Equal(Jobs, accepted.Count);
            var succeeded = await CountAsync("succeeded");
            Assert.Equal(Jobs, succeeded + await CountAsync("failed"));
            Assert.Equal(Jobs, (await app.GetAsync("/api/v1/agents/default/jobs?pageSize=1")).Ok().GetProperty("total").GetInt64());
            Assert.True(succeeded >= Jobs - 20, $"only {succeeded} of {Jobs} succeeded");

            // Every job as it ended: the kills really cut jobs short (some needed a second attempt).
            var ended = new Dictionary<string, (string State, int Attempt)>();
            for (var page = 1; ended.Count < Jobs; page++)
            {
                var items = (await app.GetAsync($"/api/v1/agents/default/jobs?pageSize=100&pageNumber={page}")).Ok().GetProperty("items");
                Assert.True(items.GetArrayLength() > 0);
                foreach (var j in items.EnumerateArray())
                {
                    ended[j.GetProperty("id").GetString()!] = (j.GetProperty("state").GetString()!, j.GetProperty("attempt").GetInt32());
                }
            }

            Assert.Contains(ended.Values, e => e.Attempt > 1);

            // None twice: the servers logged each completion they accepted; no job appears twice among them, and the
            // attempt that completed a job is its last one.
            var completions = servers.SelectMany(s => s.Output.Split('\n'))
                .Where(l => l.StartsWith('{') && l.Contains("\"EventId\":4020", StringComparison.Ordinal))
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("State"))
                .Select(st => (Id: st.GetProperty("JobId").GetString()!, Attempt: st.GetProperty("Attempt").GetInt32()))
                .ToList();
            Assert.True(completions.Count > Jobs / 2, $"{completions.Count} completions logged");
            Assert.Equal(completions.Count, completions.Select(c => c.Id).Distinct().Count());
            Assert.All(completions, c => Assert.Equal(("succeeded", c.Attempt), ended[c.Id]));
            foreach (var i in new[] { 0, 499, 999 })
            {
                var result = (await app.GetAsync($"/api/v1/tasks/crash-{i}/result")).Ok();
                Assert.Equal(result.GetProperty("state").GetString() == "succeeded" ? 1 : 0, result.GetProperty("images").GetArrayLength());
            }

            Assert.True(workers.Count == 2 && servers.Count == 2);
        }
        finally
        {
            foreach (var p in workers.Concat(servers))
            {
                await p.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The outbox survives a crash: jobs end (their state changes commit with their webhook messages) while the receiver
    /// answers 503, the server is SIGKILLed with every message still undelivered, and a new server on the same database
    /// delivers each one, under the webhook-id it had before the kill.
    /// </summary>
    [Fact]
    public async Task ServerKilledBetweenStateChangeAndDelivery_LosesNoWebhook()
    {
        const int count = 30;
        await using var db = await TestDatabase.CreateAsync();
        await using var receiver = await WebhookReceiver.StartAsync();
        var up = 0;
        receiver.Answer = (_, _) => Volatile.Read(ref up) == 1 ? 200 : 503;
        var port = AtelierProcess.FreePort();
        var adminKey = Secrets.Issue(Secrets.PlatformKeyPrefix);
        var baseUri = new Uri($"http://127.0.0.1:{port}");
        string[] ServeArgs() => Serve(db, baseUri, adminKey,
            ["--Atelier:Webhooks:AllowPrivateNetworks=true", "--Atelier:Webhooks:TimeoutSeconds=30", "--Atelier:Webhooks:PollMilliseconds=100",
             .. Enumerable.Range(0, 40).Select(i => $"--Atelier:Webhooks:RetryScheduleSeconds:{i}={(i == 0 ? 0 : 1)}")]);
        var processes = new List<AtelierProcess> { AtelierProcess.Start(db.Folder, ServeArgs()) };
        try
        {
            await processes[0].WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            using var http = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(30) };
            var api = new ApiClient(http);
            var world = await Scenario.NewTenantAsync(api.With(adminKey, "op-crash"));
            var workerKey = (await api.With(adminKey, "op-crash").PostAsync("/api/v1/platform/worker-keys")).Created().GetProperty("secret").GetString()!;
            processes.Add(AtelierProcess.Start(db.Folder, "worker", "--server", baseUri.ToString(), "--token", workerKey, "--engine", "noop=10", "--slots", "2", "--id", "hook-worker"));
            var app = api.With(world.AppToken);
            var jobs = new List<string>();
            for (var i = 0; i < count; i++)
            {
                jobs.Add((await app.PostAsync("/api/v1/agents/default/jobs", new { input = new { prompt = $"job {i}", steps = 2 }, webhook = receiver.Url($"/j{i}"), webhookEvents = new[] { "completed" } }))
                    .Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!);
            }

            await Eventually.UntilAsync(async () => (await app.GetAsync("/api/v1/agents/default/jobs?state=succeeded&pageSize=1")).Ok().GetProperty("total").GetInt32() >= count,
                "every job finished", TimeSpan.FromSeconds(180));

            // Every job's message was tried and refused; the server dies with all of them undelivered.
            await receiver.WaitForAsync(r => Enumerable.Range(0, count).All(i => r.Any(x => x.Path == $"/j{i}")), 30, "first attempts");
            await processes[0].KillAsync();
            Assert.DoesNotContain(receiver.Received, r => r.Answer == 200);
            var before = receiver.Received.GroupBy(r => r.Path).ToDictionary(g => g.Key, g => g.Select(r => r.Id).Distinct().Single());
            Volatile.Write(ref up, 1);

            processes.Add(AtelierProcess.Start(db.Folder, ServeArgs()));
            await processes[2].WaitForOutputAsync("Now listening on", TimeSpan.FromSeconds(60));
            await receiver.WaitForAsync(r => Enumerable.Range(0, count).All(i => r.Any(x => x.Path == $"/j{i}" && x.Answer == 200)), 60, "the deliveries after the restart");
            // Once the server has recorded a message as delivered it never sends it again: count the answers after that.
            await Eventually.UntilAsync(async () => (await app.GetAsync("/api/v1/webhook-deliveries?state=delivered&pageSize=1")).Ok().GetProperty("total").GetInt32() == count,
                "the server recorded every delivery");
            for (var i = 0; i < count; i++)
            {
                var got = receiver.On($"/j{i}");
                Assert.Single(got, r => r.Answer == 200);
                Assert.All(got, r => Assert.Equal(before[$"/j{i}"], r.Id));
                Assert.Equal(jobs[i], JsonDocument.Parse(got[^1].Body).RootElement.GetProperty("data").GetProperty("job").GetProperty("id").GetString());
            }

            Assert.Equal(count, (await app.GetAsync("/api/v1/webhook-deliveries?state=delivered&pageSize=1")).Ok().GetProperty("total").GetInt32());
        }
        finally
        {
            foreach (var p in processes)
            {
                await p.DisposeAsync();
            }
        }
    }
}
