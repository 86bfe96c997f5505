using System.Collections.Concurrent;
using System.Text.Json;
using Atelier.Runtime.Local;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Runtime.Tests.Local;

/// <summary>Slots, scaling from zero, idle stop and crashes.</summary>
public sealed class LocalBackendPoolTests
{
    [Fact]
    public async Task Acquire_ManyConcurrentRequests_NeverExceedsInstanceConcurrencyOrMaxInstances()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(TestInstance.Revision(harness.Marker, concurrency: 2), max: 2));
        var destinations = new ConcurrentDictionary<Uri, bool>();
        var mostInstances = 0;
        var mostInFlight = 0;
        using var stop = new CancellationTokenSource();
        // The backend's own view, sampled while the requests run.
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var instances = harness.Backend.Instances(harness.Key);
                mostInstances = Math.Max(mostInstances, instances.Count);
                mostInFlight = Math.Max(mostInFlight, instances.Select(i => i.InFlight).DefaultIfEmpty().Max());
                await Task.Delay(10);
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 12).Select(async _ =>
        {
            using var lease = await harness.AcquireAsync();
            destinations[lease.Destination] = true;
            await harness.GetAsync(lease, "slow?ms=300");
        }));
        await stop.CancelAsync();
        await sampler;

        Assert.InRange(destinations.Count, 1, 2);
        Assert.InRange(mostInstances, 1, 2);
        Assert.InRange(mostInFlight, 1, 2);
        foreach (var destination in destinations.Keys)
        {
            using var inflight = JsonDocument.Parse(await harness.Http.GetStringAsync(new Uri(destination, "inflight")));
            Assert.InRange(inflight.RootElement.GetProperty("most").GetInt32(), 1, 2);
        }

        Assert.InRange((await harness.ObserveAsync()).Instances, 1, 2);
    }

    [Fact]
    public async Task Acquire_NoFreeSlotWithinWait_ThrowsCapacityThenWaiterGetsReleasedSlot()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(TestInstance.Revision(harness.Marker, concurrency: 2), max: 1));
        var first = await harness.AcquireAsync();
        using var second = await harness.AcquireAsync();

        var full = await Assert.ThrowsAsync<RuntimeCapacityException>(async () => await harness.AcquireAsync(wait: TimeSpan.FromMilliseconds(200)));
        Assert.Equal(RuntimeErrors.NoCapacity, full.Code);
        Assert.InRange(full.RetryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));

        var waiting = harness.AcquireAsync().AsTask();
        first.Dispose();
        using var third = await waiting;
        Assert.Equal(first.InstanceId, third.InstanceId);
        Assert.Single(harness.Backend.Instances(harness.Key));
        Assert.Contains("\"greeting\"", await harness.GetAsync(third), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Acquire_AfterIdleStop_StartsFromZero()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(idle: TimeSpan.FromMinutes(1)));
        var busy = await harness.AcquireAsync();
        var firstId = busy.InstanceId;
        var firstPid = harness.Backend.Instances(harness.Key).Single().Pid;

        harness.Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(0, await harness.Backend.StopIdleAsync());

        busy.Dispose();
        Assert.Equal(0, await harness.Backend.StopIdleAsync());
        harness.Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(1, await harness.Backend.StopIdleAsync());
        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 0, 0), await harness.ObserveAsync());
        Assert.False(TestInstance.IsAlive(firstPid));
        Assert.Empty(harness.PidFiles());

        using var lease = await harness.AcquireAsync();
        Assert.NotEqual(firstId, lease.InstanceId);
        Assert.Contains(lease.InstanceId, await harness.GetAsync(lease), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdleLoop_ClockPastIdleWindow_StopsIdleInstanceOnItsOwn()
    {
        await using var harness = new Harness(options => options.IdleCheckInterval = TimeSpan.FromSeconds(5));
        await harness.ApplyAsync(harness.Spec(idle: TimeSpan.FromMinutes(1)));
        var pid = harness.Backend.Instances(harness.Key).Single().Pid;

        // The loop's timer runs on the fake clock: each step moves it past a check and, soon, past the idle window.
        await Eventually.UntilAsync(() =>
        {
            harness.Clock.Advance(TimeSpan.FromSeconds(10));
            return harness.Backend.Instances(harness.Key).Count == 0;
        }, "the idle loop stops the instance");
        await Eventually.UntilAsync(() => !TestInstance.IsAlive(pid), "the idle instance's process is gone");
    }

    [Fact]
    public async Task Acquire_AfterInstanceCrash_GetsNewWorkingInstance()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec());
        var crashed = await harness.AcquireAsync();
        var crashedPid = harness.Backend.Instances(harness.Key).Single().Pid;

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => harness.GetAsync(crashed, "crash"));
        await Eventually.UntilAsync(() => !TestInstance.IsAlive(crashedPid), "the crashed instance's process is gone");
        crashed.ReportFailure();
        crashed.Dispose();
        await Eventually.UntilAsync(() => harness.Backend.Instances(harness.Key).Count == 0, "the crashed instance leaves its pool");

        using var lease = await harness.AcquireAsync();
        Assert.NotEqual(crashed.InstanceId, lease.InstanceId);
        Assert.Contains(lease.InstanceId, await harness.GetAsync(lease), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Crash_BelowWarmMinimum_RestartsInstance()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(min: 1));
        var first = harness.Backend.Instances(harness.Key).Single();

        ProcessGroups.SignalProcess(first.Pid, ProcessGroups.SigKill);

        var replacement = await Eventually.ValueAsync(
            () => Task.FromResult(harness.Backend.Instances(harness.Key)),
            instances => instances is [{ Ready: true } only] && only.Id != first.Id,
            "a new warm instance replaces the killed one");
        Assert.NotEqual(first.Pid, replacement[0].Pid);
        Assert.Equal(FunctionPhase.Ready, (await harness.ObserveAsync()).Phase);
        using var lease = await harness.AcquireAsync();
        Assert.Equal(replacement[0].Id, lease.InstanceId);
        Assert.Contains(lease.InstanceId, await harness.GetAsync(lease), StringComparison.Ordinal);
    }
}
