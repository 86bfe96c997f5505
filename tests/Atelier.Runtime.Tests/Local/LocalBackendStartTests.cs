using System.Net;
using System.Net.Sockets;
using Atelier.Runtime.Local;
using Atelier.Server.Tests.Infrastructure;

namespace Atelier.Runtime.Tests.Local;

/// <summary>Starting instances: what ApplyAsync brings up, and each way a start fails (leaving no process behind).</summary>
public sealed class LocalBackendStartTests
{
    [Fact]
    public async Task Apply_OneRevision_StartsOneReadyInstanceThatAnswers()
    {
        await using var harness = new Harness();
        var revision = TestInstance.Revision(harness.Marker, environment: new Dictionary<string, string> { ["TEST_GREETING"] = "port-{port}" });

        await harness.ApplyAsync(harness.Spec(revision));

        var observed = await harness.ObserveAsync();
        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 1, 1), observed);
        using var lease = await harness.AcquireAsync();
        var body = await harness.GetAsync(lease);
        Assert.Contains($"\"greeting\":\"port-{lease.Destination.Port}\"", body, StringComparison.Ordinal);
        Assert.Contains($"\"instance\":\"{lease.InstanceId}\"", body, StringComparison.Ordinal);
        Assert.Equal(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), await harness.GetAsync(lease, "env/ATELIER_PARENT_PID"));
        Assert.True(File.Exists(Path.Combine(harness.StateDirectory, "instances", lease.InstanceId + ".pid")));
        Assert.Single(TestInstance.ProcessesWithMarker(harness.Marker));
        var log = Path.Combine(harness.StateDirectory, "logs", lease.InstanceId + ".log");
        await Eventually.UntilAsync(() => File.Exists(log) && File.ReadAllText(log).Contains($"stdout listening on {lease.Destination.Port}", StringComparison.Ordinal),
            "the instance's stdout is in its log file");
    }

    [Fact]
    public async Task Observe_DuringSlowStart_ReadsDeployingThenReady()
    {
        await using var harness = new Harness();
        var revision = TestInstance.Revision(harness.Marker, environment: new Dictionary<string, string> { ["TEST_START_DELAY_MS"] = "1500" });

        var applying = harness.ApplyAsync(harness.Spec(revision));

        var starting = await Eventually.ValueAsync(harness.ObserveAsync, o => o.Instances > 0, "the instance is starting");
        Assert.Equal(new FunctionObservation(FunctionPhase.Deploying, null, 1, 0), starting);
        await applying;
        Assert.Equal(new FunctionObservation(FunctionPhase.Ready, null, 1, 1), await harness.ObserveAsync());
    }

    [Fact]
    public async Task Acquire_StartFailsWhileRequestsWait_ThrowsTheStartFailureToEachWaiter()
    {
        await using var harness = new Harness();
        // v1 takes no traffic, so apply does not start it: the first requests do.
        var spec = harness.Spec() with
        {
            Revisions = [TestInstance.Revision(harness.Marker, name: "v1", environment: new Dictionary<string, string> { ["TEST_EXIT_AT_START"] = "4" })],
            Traffic = [new TrafficTarget("v1", 0)],
        };
        await harness.ApplyAsync(spec);

        var requests = Enumerable.Range(0, 3).Select(_ => harness.AcquireAsync("v1").AsTask()).ToList();

        foreach (var request in requests)
        {
            var error = await Assert.ThrowsAsync<RuntimeException>(() => request);
            Assert.Equal(RuntimeErrors.ExitedAtStart, error.Code);
            Assert.Contains("exit code 4", error.Message, StringComparison.Ordinal);
        }

        Assert.Empty(harness.Backend.Instances(harness.Key));
        Assert.Empty(TestInstance.ProcessesWithMarker(harness.Marker));
    }

    [Fact]
    public async Task Acquire_UnknownFunctionOrRevision_ThrowsNotDeployedOrUnknownRevision()
    {
        await using var harness = new Harness();

        var notDeployed = await Assert.ThrowsAsync<RuntimeException>(async () => await harness.AcquireAsync());
        Assert.Equal(RuntimeErrors.NotDeployed, notDeployed.Code);
        Assert.Equal(FunctionPhase.Absent, (await harness.ObserveAsync()).Phase);

        // A revision that takes no traffic is not started by apply, so this needs no process.
        var spec = harness.Spec() with
        {
            Revisions = [TestInstance.Revision(harness.Marker, name: "v1")],
            Traffic = [new TrafficTarget("v1", 0)],
        };
        await harness.ApplyAsync(spec);
        var unknown = await Assert.ThrowsAsync<RuntimeException>(async () => await harness.AcquireAsync("v9"));
        Assert.Equal(RuntimeErrors.UnknownRevision, unknown.Code);
        Assert.Empty(TestInstance.ProcessesWithMarker(harness.Marker));
    }

    [Theory]
    [InlineData("/nonexistent/atelier/instance")]
    [InlineData("atelier-no-such-command")]
    public async Task Apply_CommandNotFound_ThrowsCommandNotFound(string command)
    {
        await using var harness = new Harness();
        var revision = TestInstance.Revision(harness.Marker) with { Command = command };

        var error = await Assert.ThrowsAsync<RuntimeException>(() => harness.ApplyAsync(harness.Spec(revision)));

        Assert.Equal(RuntimeErrors.CommandNotFound, error.Code);
        Assert.Contains(command, error.Message, StringComparison.Ordinal);
        var observed = await harness.ObserveAsync();
        Assert.Equal(FunctionPhase.Failed, observed.Phase);
        Assert.Equal(error.Message, observed.Reason);
        Assert.Equal(0, observed.Instances);
    }

    [Fact]
    public async Task Apply_InstanceExitsAtStart_ThrowsExitedAtStartWithCodeAndStderr()
    {
        await using var harness = new Harness();
        var revision = TestInstance.Revision(harness.Marker, environment: new Dictionary<string, string> { ["TEST_EXIT_AT_START"] = "3" });

        var error = await Assert.ThrowsAsync<RuntimeException>(() => harness.ApplyAsync(harness.Spec(revision)));

        Assert.Equal(RuntimeErrors.ExitedAtStart, error.Code);
        Assert.Contains("exit code 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("exiting at start with 3", error.Message, StringComparison.Ordinal);
        Assert.Empty(TestInstance.ProcessesWithMarker(harness.Marker));
        Assert.Empty(harness.PidFiles());
        Assert.Equal(0, (await harness.ObserveAsync()).Instances);
    }

    [Fact]
    public async Task Apply_NeverHealthy_ThrowsNeverHealthyAndStopsInstance()
    {
        await using var harness = new Harness(options => options.StartTimeout = TimeSpan.FromSeconds(3));
        var revision = TestInstance.Revision(harness.Marker, environment: new Dictionary<string, string> { ["TEST_NEVER_HEALTHY"] = "1" });

        var error = await Assert.ThrowsAsync<RuntimeException>(() => harness.ApplyAsync(harness.Spec(revision)));

        Assert.Equal(RuntimeErrors.NeverHealthy, error.Code);
        Assert.Contains("/health", error.Message, StringComparison.Ordinal);
        await Eventually.UntilAsync(() => TestInstance.ProcessesWithMarker(harness.Marker).Count == 0, "the never-healthy instance is gone");
        Assert.Empty(harness.PidFiles());
        Assert.Equal(FunctionPhase.Failed, (await harness.ObserveAsync()).Phase);
    }

    [Fact]
    public async Task Apply_FixedPortTaken_ThrowsPortInUse()
    {
        await using var harness = new Harness();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;

        var error = await Assert.ThrowsAsync<RuntimeException>(() => harness.ApplyAsync(harness.Spec(TestInstance.Revision(harness.Marker, port: port))));

        Assert.Equal(RuntimeErrors.PortInUse, error.Code);
        Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
        Assert.Empty(TestInstance.ProcessesWithMarker(harness.Marker));
    }

    [Fact]
    public async Task MountDomain_ThenUnmount_TracksHostForTheFunction()
    {
        await using var harness = new Harness();
        var domain = new DomainSpec("Images.Example.com", "CERT", "KEY");

        await harness.Backend.MountDomainAsync(Harness.Region, harness.Key, domain, CancellationToken.None);

        Assert.True(harness.Backend.TryGetDomain("images.example.com", out var mounted));
        Assert.Equal(harness.Key, mounted.Key);
        Assert.Equal(domain, mounted.Domain);
        var other = await Assert.ThrowsAsync<RuntimeException>(() =>
            harness.Backend.MountDomainAsync(Harness.Region, new FunctionKey("fn-other"), domain, CancellationToken.None));
        Assert.Equal(RuntimeErrors.InvalidSpec, other.Code);

        await harness.Backend.UnmountDomainAsync(Harness.Region, harness.Key, "images.example.com", CancellationToken.None);
        await harness.Backend.UnmountDomainAsync(Harness.Region, harness.Key, "images.example.com", CancellationToken.None);

        Assert.Empty(harness.Backend.Domains);
    }
}
