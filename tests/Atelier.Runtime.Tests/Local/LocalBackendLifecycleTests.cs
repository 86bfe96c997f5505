using System.Diagnostics;
using Atelier.Runtime.Local;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Runtime.Tests.Local;

/// <summary>Spec changes, manual scale, delete and the cleanup of what a crashed server left.</summary>
public sealed class LocalBackendLifecycleTests
{
    [Fact]
    public async Task Apply_ChangedOrRemovedRevision_ReplacesOrStopsItsInstances()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(Greeting(harness, "latest", "one")));
        var first = harness.Backend.Instances(harness.Key).Single();

        await harness.ApplyAsync(harness.Spec(Greeting(harness, "latest", "two")));

        var second = harness.Backend.Instances(harness.Key).Single();
        Assert.NotEqual(first.Id, second.Id);
        Assert.False(TestInstance.IsAlive(first.Pid));
        using (var lease = await harness.AcquireAsync())
        {
            Assert.Contains("\"greeting\":\"two\"", await harness.GetAsync(lease), StringComparison.Ordinal);
        }

        await harness.ApplyAsync(harness.Spec() with
        {
            Revisions = [Greeting(harness, "v2", "three")],
            Traffic = [new TrafficTarget("v2", 100)],
        });

        var third = harness.Backend.Instances(harness.Key).Single();
        Assert.Equal("v2", third.Revision);
        Assert.False(TestInstance.IsAlive(second.Pid));
        var gone = await Assert.ThrowsAsync<RuntimeException>(async () => await harness.AcquireAsync("latest"));
        Assert.Equal(RuntimeErrors.UnknownRevision, gone.Code);
        using var v2 = await harness.AcquireAsync("v2");
        Assert.Contains("\"greeting\":\"three\"", await harness.GetAsync(v2), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Scale_ToTwoThenZero_KeepsTwoWarmThenIdlesDown()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec(idle: TimeSpan.FromMinutes(1)));

        await harness.Backend.ScaleAsync(Harness.Region, harness.Key, 2, CancellationToken.None);

        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 2, 2), await harness.ObserveAsync());
        harness.Clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(0, await harness.Backend.StopIdleAsync());

        await harness.Backend.ScaleAsync(Harness.Region, harness.Key, 0, CancellationToken.None);
        Assert.Equal(2, await harness.Backend.StopIdleAsync());
        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 0, 0), await harness.ObserveAsync());

        var notDeployed = await Assert.ThrowsAsync<RuntimeException>(() =>
            harness.Backend.ScaleAsync(Harness.Region, new FunctionKey("fn-missing"), 1, CancellationToken.None));
        Assert.Equal(RuntimeErrors.NotDeployed, notDeployed.Code);
    }

    [Fact]
    public async Task Delete_InstanceWithGrandchild_KillsWholeProcessGroup()
    {
        await using var harness = new Harness();
        var revision = TestInstance.Revision(harness.Marker) with
        {
            Command = "/bin/sh",
            // The grandchild ignores SIGTERM: only the group's SIGKILL after its leader went can end it.
            Args = ["-c", $"(trap '' TERM; exec sleep 300) & exec '{TestInstance.Dotnet}' '{TestInstance.DllPath}' {TestInstance.MarkerArgument(harness.Marker)}"],
        };
        await harness.ApplyAsync(harness.Spec(revision));
        var leader = harness.Backend.Instances(harness.Key).Single().Pid;
        var sleep = await Eventually.ValueAsync(
            () => Task.FromResult(ProcessGroups.GroupMembers(leader).Where(p => ProcessGroups.ReadCommandLine(p.Pid)?.StartsWith("sleep", StringComparison.Ordinal) == true).ToList()),
            members => members.Count == 1,
            "the grandchild sleep runs in the instance's group");

        await harness.Backend.DeleteAsync(Harness.Region, harness.Key, CancellationToken.None);

        await Eventually.UntilAsync(() => !TestInstance.IsAlive(sleep[0].Pid) && !TestInstance.IsAlive(leader), "the instance and its grandchild are gone");
        Assert.Empty(harness.PidFiles());
        Assert.Equal(FunctionPhase.Absent, (await harness.ObserveAsync()).Phase);
        await harness.Backend.DeleteAsync(Harness.Region, harness.Key, CancellationToken.None);
    }

    [Fact]
    public async Task CleanStale_LeftoverOfAbandonedBackend_KillsItsGroupButNotAReusedPid()
    {
        await using var harness = new Harness();
        await harness.ApplyAsync(harness.Spec());
        var leftover = harness.Backend.Instances(harness.Key).Single();
        harness.Backend.Abandon();
        // A pid file naming a live process that is not the instance (a reused pid): its start time differs.
        using var unrelated = Process.Start(new ProcessStartInfo("sleep", "300") { UseShellExecute = false })!;
        try
        {
            var reused = new PidFile("fn-x.latest.reused", unrelated.Id, unrelated.Id, 1, "sleep 300");
            reused.Write(Path.Combine(harness.StateDirectory, "instances", reused.InstanceId + ".pid"));
            await using var restarted = harness.NewBackend();

            var killed = await restarted.CleanStaleAsync();

            Assert.Equal(1, killed);
            await Eventually.UntilAsync(() => !TestInstance.IsAlive(leftover.Pid), "the abandoned instance is killed");
            Assert.True(TestInstance.IsAlive(unrelated.Id));
            Assert.Empty(harness.PidFiles());
        }
        finally
        {
            unrelated.Kill();
        }
    }

    private static RevisionSpec Greeting(Harness harness, string name, string greeting) =>
        TestInstance.Revision(harness.Marker, name, new Dictionary<string, string> { ["TEST_GREETING"] = greeting });
}
