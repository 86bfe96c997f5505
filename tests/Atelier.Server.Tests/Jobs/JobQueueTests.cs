using System.Collections.Concurrent;
using Atelier.Contracts.Errors;
using Atelier.Core.Jobs;
using Atelier.Server.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Atelier.Server.Tests.Jobs;

/// <summary>
/// The queue component on the real database of the suite (SQLite or PostgreSQL). The job API that puts it behind HTTP
/// comes with the job pipeline; until then these tests drive the component through its own scope.
/// </summary>
public class JobQueueTests(FakeClockHost shared) : IClassFixture<FakeClockHost>
{
    private TestHost Host => shared.Host;
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Starve = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Keep = TimeSpan.FromHours(1);

    /// <summary>Runs in a scope of its own, acting for <paramref name="tenant"/> as a request of that tenant would.</summary>
    private async Task<T> WithQueue<T>(Func<JobQueue, Task<T>> action, string? tenant = null)
    {
        using var scope = Host.Services.CreateScope();
        scope.ServiceProvider.GetRequiredService<Atelier.Data.AtelierDb>().TenantScope = tenant;
        return await action(scope.ServiceProvider.GetRequiredService<JobQueue>());
    }

    private async Task<string> StateAsync(string jobId)
    {
        using var scope = Host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Atelier.Data.AtelierDb>();
        return await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.FirstAsync(
            Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.IgnoreQueryFilters(db.Jobs).Where(j => j.Id == jobId).Select(j => j.State));
    }

    [Fact]
    public async Task Claims_ParallelWorkers_EachJobOnce()
    {
        var tenant = "ten_q" + Guid.NewGuid().ToString("N")[..8];
        var ids = new HashSet<string>();
        for (var i = 0; i < 120; i++)
        {
            ids.Add((await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, "agt", null, $"{{\"n\":{i}}}", null, 0, 3), CancellationToken.None), tenant)).Job.Id);
        }

        var claimed = new ConcurrentBag<(string Id, int Attempt)>();
        await Task.WhenAll(Enumerable.Range(0, 6).Select(w => Task.Run(async () =>
        {
            while (await WithQueue(q => q.ClaimAsync($"w{w}", Lease, null, Starve, CancellationToken.None)) is { } job)
            {
                if (job.TenantId == tenant)
                {
                    claimed.Add((job.Id, job.Attempt));
                }

                Assert.True(await WithQueue(q => q.CompleteAsync(job.Id, job.Attempt, "{}", Keep, CancellationToken.None)));
            }
        })));
        Assert.Equal(120, claimed.Count);
        Assert.Equal(ids.Order(), claimed.Select(c => c.Id).Order());
        Assert.All(claimed, c => Assert.Equal(1, c.Attempt));
    }

    [Fact]
    public async Task Lease_ExpiredThenRescued_StaleCompletionRefused_ThenFailsAfterMaxAttempts()
    {
        var tenant = "ten_l" + Guid.NewGuid().ToString("N")[..8];
        var (job, _) = await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, "agt", null, "{}", null, 100, 2), CancellationToken.None), tenant);
        var first = await WithQueue(q => q.ClaimAsync("w1", Lease, null, Starve, CancellationToken.None));
        Assert.Equal(job.Id, first!.Id);
        Host.Clock!.Advance(TimeSpan.FromSeconds(20));
        Assert.True(await WithQueue(q => q.HeartbeatAsync(job.Id, 1, Lease, null, CancellationToken.None)));
        Host.Clock.Advance(TimeSpan.FromSeconds(25)); // still inside the renewed lease
        await WithQueue(q => q.RescueExpiredAsync(Grace, CancellationToken.None));
        Assert.Equal("running", await StateAsync(job.Id));
        Host.Clock.Advance(TimeSpan.FromSeconds(10));
        // The host's own rescuer may get there first; either way the job is queued again.
        await WithQueue(q => q.RescueExpiredAsync(Grace, CancellationToken.None));
        Assert.Equal("queued", await StateAsync(job.Id));

        var second = await WithQueue(q => q.ClaimAsync("w2", Lease, null, Starve, CancellationToken.None));
        Assert.Equal((job.Id, 2), (second!.Id, second.Attempt));
        // The first worker wakes up and answers late: refused, nothing changes.
        Assert.False(await WithQueue(q => q.CompleteAsync(job.Id, 1, "{\"late\":true}", Keep, CancellationToken.None)));
        Assert.False(await WithQueue(q => q.HeartbeatAsync(job.Id, 1, Lease, null, CancellationToken.None)));

        // The second attempt dies too: no attempts left, so the job fails instead of going back.
        Host.Clock.Advance(TimeSpan.FromSeconds(31));
        await WithQueue(q => q.RescueExpiredAsync(Grace, CancellationToken.None));
        Assert.Equal("failed", await StateAsync(job.Id));
        Assert.False(await WithQueue(q => q.CompleteAsync(job.Id, 2, "{}", Keep, CancellationToken.None)));
    }

    /// <summary>
    /// Writes that ride in the completion's own statement (on PostgreSQL a completion's images and its preview's removal)
    /// are made with the state change and only with it: a stale attempt's completion makes none of them. SQLite puts
    /// them in a write on its writer instead, and asking its queue for them is refused before anything changes.
    /// </summary>
    [Fact]
    public async Task CompletionSteps_GoWithTheStateChange_AndNotWithAStaleAttempt()
    {
        var tenant = "ten_w" + Guid.NewGuid().ToString("N")[..8];
        var agent = "agt_w" + Guid.NewGuid().ToString("N")[..8];
        var (job, _) = await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, agent, null, "{}", null, 0, 3), CancellationToken.None), tenant);
        var leased = await WithQueue(q => q.ClaimAsync("w1", Lease, null, Starve, CancellationToken.None, lane: agent));
        Assert.Equal((job.Id, 1), (leased!.Id, leased.Attempt));
        Assert.True(await WithQueue(q => q.SavePreviewAsync(job.Id, 1, 3, [1, 2, 3], null, CancellationToken.None), tenant));
        Assert.Equal(1, await PreviewsAsync(job.Id));
        (string, object?[])[] steps = [("""DELETE FROM job_previews WHERE "JobId" = {0} AND """ + JobQueue.StateChanged, [job.Id])];

        if (!await WithQueue(q => Task.FromResult(q.ChainsWrites)))
        {
            await Assert.ThrowsAsync<InvalidOperationException>(() => WithQueue(q => q.CompleteAsync(job.Id, 1, "{}", Keep, CancellationToken.None, whenDone: steps)));
            Assert.Equal("running", await StateAsync(job.Id));
            Assert.Equal(1, await PreviewsAsync(job.Id));
            return;
        }

        // Another attempt's answer: the state does not change, so the step removes nothing.
        Assert.False(await WithQueue(q => q.CompleteAsync(job.Id, 2, "{}", Keep, CancellationToken.None, whenDone: steps)));
        Assert.Equal("running", await StateAsync(job.Id));
        Assert.Equal(1, await PreviewsAsync(job.Id));

        // The attempt's own answer: the state change and the step, in one statement.
        Assert.True(await WithQueue(q => q.CompleteAsync(job.Id, 1, "{}", Keep, CancellationToken.None, whenDone: steps)));
        Assert.Equal("succeeded", await StateAsync(job.Id));
        Assert.Equal(0, await PreviewsAsync(job.Id));
    }

    private async Task<int> PreviewsAsync(string jobId)
    {
        using var scope = Host.Services.CreateScope();
        var db = scope.ServiceProvider.GetRequiredService<Atelier.Data.AtelierDb>();
        return await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(
            Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.IgnoreQueryFilters(db.JobPreviews).Where(p => p.JobId == jobId));
    }

    [Fact]
    public async Task Enqueue_SameClientIdSameBody_IsTheSameJob_OtherBodyIsRefused()
    {
        var tenant = "ten_i" + Guid.NewGuid().ToString("N")[..8];
        var (first, created) = await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, "agt", "client-1", "{\"prompt\":\"fox\"}", "m1", 0, 3), CancellationToken.None), tenant);
        Assert.True(created);
        var (again, createdAgain) = await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, "agt", "client-1", "{\"prompt\":\"fox\"}", "m1", 0, 3), CancellationToken.None), tenant);
        Assert.False(createdAgain);
        Assert.Equal(first.Id, again.Id);
        var error = await Assert.ThrowsAsync<AtelierException>(() =>
            WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant, "agt", "client-1", "{\"prompt\":\"cat\"}", "m1", 0, 3), CancellationToken.None), tenant));
        Assert.Equal(ErrorCatalog.b_agent_jobidexisted, error.Code);
        // Another tenant may use the same client id.
        var (other, otherCreated) = await WithQueue(q => q.EnqueueAsync(new JobQueue.NewJob(tenant + "x", "agt", "client-1", "{}", null, 0, 3), CancellationToken.None), tenant + "x");
        Assert.True(otherCreated);
        Assert.NotEqual(first.Id, other.Id);
    }
}
