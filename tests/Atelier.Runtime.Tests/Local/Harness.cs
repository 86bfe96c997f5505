using Atelier.Runtime.Local;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Atelier.Runtime.Tests.Local;

/// <summary>
/// One test's local backend: its own state directory, a fake clock (idleness follows it; the idle loop's period is a
/// day so only the test's StopIdleAsync acts), a marker for the processes it starts, and a client for the instances.
/// </summary>
internal sealed class Harness : IAsyncDisposable
{
    public static readonly RuntimeRegion Region = new("local", "local");

    public Harness(Action<LocalRuntimeOptions>? configure = null)
    {
        StateDirectory = Path.Combine(Path.GetTempPath(), "atelier-runtime-tests", Guid.NewGuid().ToString("N"));
        Options = new LocalRuntimeOptions
        {
            StateDirectory = StateDirectory,
            StopGrace = TimeSpan.FromSeconds(5),
            IdleCheckInterval = TimeSpan.FromDays(1),
            RestartBackoffInitial = TimeSpan.FromMilliseconds(100),
        };
        configure?.Invoke(Options);
        Backend = NewBackend();
    }

    public FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public string StateDirectory { get; }

    public LocalRuntimeOptions Options { get; }

    public LocalBackend Backend { get; }

    public string Marker { get; } = Guid.NewGuid().ToString("N");

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public FunctionKey Key { get; } = new("fn-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>Another backend on the same state directory and clock (a restarted server).</summary>
    public LocalBackend NewBackend() => new(Options, Clock, new TestLogger<LocalBackend>());

    public FunctionSpec Spec(RevisionSpec? revision = null, int min = 0, int max = 0, TimeSpan? idle = null) => new()
    {
        Key = Key,
        Revisions = [revision ?? TestInstance.Revision(Marker)],
        MinInstances = min,
        MaxInstances = max,
        IdleWindow = idle ?? TimeSpan.FromMinutes(5),
    };

    public Task ApplyAsync(FunctionSpec spec) => Backend.ApplyAsync(Region, spec, CancellationToken.None);

    public ValueTask<IInstanceLease> AcquireAsync(string revision = "latest", TimeSpan? wait = null) =>
        Backend.AcquireAsync(Region, Key, revision, wait ?? TimeSpan.FromSeconds(60), CancellationToken.None);

    public Task<FunctionObservation> ObserveAsync() => Backend.ObserveAsync(Region, Key, CancellationToken.None);

    public Task<string> GetAsync(IInstanceLease lease, string path = "") => Http.GetStringAsync(new Uri(lease.Destination, path));

    public string[] PidFiles() =>
        Directory.Exists(Path.Combine(StateDirectory, "instances")) ? Directory.GetFiles(Path.Combine(StateDirectory, "instances"), "*.pid") : [];

    public async ValueTask DisposeAsync()
    {
        await Backend.DisposeAsync();
        Http.Dispose();
        try
        {
            Directory.Delete(StateDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A log still being closed; the temp folder is cleaned by the system.
        }
    }
}

/// <summary>Writes the backend's log to the running test's output (shown when it fails).</summary>
internal sealed class TestLogger<T> : ILogger<T>
{
    private readonly ITestOutputHelper? _output = TestContext.Current.TestOutputHelper;

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            _output?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {eventId.Id} {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
        catch (InvalidOperationException)
        {
            // The test already ended (an instance's last lines arrive late).
        }
    }
}
