using Atelier.Core.Platform;
using Atelier.Runtime;
using Atelier.Runtime.Local;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Atelier.Server.Hosting;

/// <summary>
/// The embedded local worker, as an instance of the <c>local</c> runtime backend: once the server listens it applies a
/// one-instance spec running <c>atelier worker</c> against the server's loopback address (ready when the worker's
/// health port says it registered), kept warm by the backend (its own process group, restarted with backoff when it
/// dies, stopped with the server, stopped by the guardian when the server is killed). When the worker's key is
/// revoked, a fresh key is issued and the instance replaced with it.
/// </summary>
public sealed partial class LocalWorkerLauncher(EmbeddedOptions options, ServerOptions server, IServer host, IHostApplicationLifetime lifetime,
    IServiceScopeFactory scopes, LocalBackend local, TimeProvider clock, ILogger<LocalWorkerLauncher> logger) : BackgroundService
{
    private static readonly FunctionKey Key = new("local-worker");
    private static readonly RuntimeRegion Region = new("local", "local");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.LocalWorker)
        {
            return;
        }

        var started = new TaskCompletionSource();
        using var registration = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(stoppingToken);
        var address = AutoscalerHost.LoopbackAddress(host) ?? throw new InvalidOperationException("The server has no http address for the local worker.");

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(5), clock);
        string? keyId = null;
        do
        {
            try
            {
                using var scope = scopes.CreateScope();
                var setup = scope.ServiceProvider.GetRequiredService<EmbeddedSetup>();
                if (keyId is null || !await setup.LocalWorkerKeyValidAsync(keyId, stoppingToken))
                {
                    // First start, or its key was revoked: a fresh key, and the instance replaced with it.
                    var secret = await setup.IssueLocalWorkerKeyAsync(server.DataDirectory, stoppingToken);
                    keyId = EmbeddedSetup.LocalWorkerKeyId(server.DataDirectory);
                    await local.ApplyAsync(Region, Spec(address, secret), stoppingToken);
                    LogStarted(logger, local.ReadyProcessIds(Key) is [var pid, ..] ? pid : 0, address);
                }
            }
            catch (RuntimeException e)
            {
                // The backend keeps trying to start it (with backoff); this loop applies it again on its next tick.
                LogNotStarted(logger, e.Code, e.Message);
                keyId = null;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private FunctionSpec Spec(string address, string secret)
    {
        var (file, prefix) = Core.Common.ThisExecutable.Command(options.LocalWorkerCommand);
        string[] args =
        [
            .. prefix, "worker", "--server", address, "--engine", options.LocalWorkerEngine, "--device", options.LocalWorkerDevice, "--device-fallback",
            "--slots", options.LocalWorkerSlots.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--id", $"local-worker-{EmbeddedSetup.LocalSuffix(server.DataDirectory)}", "--models", Path.Combine(server.DataDirectory, "models"),
            "--model-cache", Path.Combine(server.DataDirectory, "model-cache"),
            "--model-cache-bytes", options.LocalWorkerModelCacheBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--parent-pid", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), "--health-port", "{port}",
        ];
        return new FunctionSpec
        {
            Key = Key,
            Revisions =
            [
                new RevisionSpec
                {
                    Name = "latest", Command = file, Args = args, HealthPath = "/healthz", InstanceConcurrency = 1,
                    Environment = new Dictionary<string, string> { ["ATELIER_WORKER_TOKEN"] = secret },
                },
            ],
            MinInstances = 1,
            MaxInstances = 1,
            IdleWindow = TimeSpan.FromDays(3650),
        };
    }

    [LoggerMessage(1200, LogLevel.Information, "Local worker started (pid {Pid}) against {Address}")]
    private static partial void LogStarted(ILogger logger, int pid, string address);

    [LoggerMessage(1201, LogLevel.Warning, "The local worker could not be started ({Code}): {Message}")]
    private static partial void LogNotStarted(ILogger logger, string code, string message);
}
