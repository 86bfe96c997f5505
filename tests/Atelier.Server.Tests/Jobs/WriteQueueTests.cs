using System.Collections.Concurrent;
using System.Net;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Server.Tests.Jobs;

/// <summary>
/// The job pipeline's writes under a sustained load, on the suite's database. On SQLite they are grouped: one writer per
/// file commits the submits, claims and completions queued together (Data/Sqlite/SqliteWriter.cs), the writes still made
/// through EF take their turn in the same queue, and the write-ahead log is copied and started over while the load lasts.
/// </summary>
public class WriteQueueTests
{
    private static readonly object Input = new { prompt = "a queue", steps = 2 };

    [Fact]
    public async Task ThousandsOfParallelSubmits_AllStored_AStateChangeThroughEfIsServedDuringTheLoad_AndTheLogStaysBounded()
    {
        await using var host = await TestHost.StartAsync();
        var world = await Scenario.NewTenantAsync(host);
        var platform = host.Admin().WithHeader("X-Tenant-Id", world.TenantId);
        var config = (await platform.GetAsync("/api/v1/tenant/config")).Ok();
        (await platform.PutAsync("/api/v1/tenant/config", Scenario.ConfigWithJobCap(config, 10_000))).Ok();
        var admin = world.AdminOf(host);
        // Four apps' tokens: each credential has its own rate limit (1,000 requests a second), which 16 submitters on
        // one token can pass once the writes are grouped.
        var apps = new List<ApiClient> { world.AppOf(host) };
        for (var i = 1; i < 4; i++)
        {
            apps.Add((await Scenario.NewAppAsync(host, world, $"load-{i}")).Client);
        }

        const int total = 3000;
        var accepted = new ConcurrentBag<string>();
        var submitted = 0;
        var log = Path.Combine(host.Database.Folder, "atelier.db-wal");
        long largestLog = 0;
        var load = Enumerable.Range(0, 16).Select(n => Task.Run(async () =>
        {
            var app = apps[n % apps.Count];
            while (Interlocked.Increment(ref submitted) <= total)
            {
                var r = await app.PostAsync("/api/v1/agents/default/jobs", new { input = Input });
                accepted.Add(r.Ok(HttpStatusCode.Accepted).GetProperty("id").GetString()!);
                if (host.Database.Provider == "sqlite" && accepted.Count % 100 == 0 && File.Exists(log))
                {
                    InterlockedMax(ref largestLog, new FileInfo(log).Length);
                }
            }
        })).ToList();

        // A state change made through EF (a queued job's cancellation, which takes the file's write turn) while the
        // submits stream in: the writer lends the file in its place in the queue among their writes, so it is answered
        // while the load still runs (a lend that waited for the queue to be empty would be answered after it).
        await Eventually.UntilAsync(() => Task.FromResult(accepted.Count >= 300), "300 submits answered");
        var canceled = (await admin.PostAsync($"/api/v1/agents/default/jobs/{accepted.First()}/cancel")).Ok();
        Assert.Equal("canceled", canceled.GetProperty("state").GetString());
        var submittedWhenServed = accepted.Count;
        await Task.WhenAll(load);
        Assert.True(submittedWhenServed < total, $"the EF write was answered only after all {total} submits");

        // Every accepted submit is stored, once.
        Assert.Equal(total, accepted.Distinct().Count());
        var listed = (await admin.GetAsync("/api/v1/agents/default/jobs?state=queued&pageSize=1")).Ok();
        Assert.Equal(total - 1, listed.GetProperty("total").GetInt32());

        if (host.Database.Provider == "sqlite")
        {
            // The log is copied into the file and started over during the load: without that, 3,000 commits of new rows
            // (a few dozen pages each) leave a log of some 70 MiB, growing for as long as the load lasts.
            InterlockedMax(ref largestLog, new FileInfo(log).Length);
            Assert.True(largestLog < 32L << 20, $"the write-ahead log grew to {largestLog >> 20} MiB");
        }
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
            seen = Volatile.Read(ref target);
        }
    }
}
