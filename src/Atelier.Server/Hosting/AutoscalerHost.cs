using Atelier.Core.Agents;
using Atelier.Core.Coordination;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Atelier.Server.Hosting;

/// <summary>
/// Runs the autoscaler in the leader only, once the server listens (local units' workers need its address): a pass every
/// <see cref="AgentsOptions.ScaleIntervalSeconds"/>, or at once when a unit changes on this replica. A replica that stops
/// leading stops the local workloads it ran (the new leader runs them), and its passes end with its term.
/// </summary>
public sealed partial class AutoscalerHost(Autoscaler autoscaler, Leadership leadership, WorkerServerAddress address, ServerOptions server, IServer host,
    IHostApplicationLifetime lifetime, Microsoft.Extensions.Options.IOptions<AgentsOptions> options, ILogger<AutoscalerHost> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        {
            await started.Task.WaitAsync(stoppingToken);
        }

        address.Loopback = LoopbackAddress(host);
        address.DataDirectory = server.DataDirectory;
        var interval = TimeSpan.FromSeconds(options.Value.ScaleIntervalSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            await leadership.WaitForLeadershipAsync(stoppingToken);
            var term = leadership.Term;
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, leadership.CancellationToken);
            LogLeading(logger, leadership.ReplicaId, term);
            while (!leading.IsCancellationRequested)
            {
                try
                {
                    await autoscaler.RunPassAsync(leadership.ReplicaId, term, leadership.ConfirmAsync, leading.Token);
                    await autoscaler.Signal.WaitAsync(interval, leading.Token);
                }
                catch (OperationCanceledException) when (leading.IsCancellationRequested)
                {
                }
                catch (Exception e)
                {
                    LogPassFailed(logger, e);
                    await Task.Delay(interval, leading.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            }

            if (!stoppingToken.IsCancellationRequested)
            {
                // Leadership lost while running: the new leader starts the local workers; this replica's go.
                await autoscaler.StepDownAsync(stoppingToken);
            }
        }
    }

    /// <summary>The server's first http address with a wildcard host made loopback: where workers on this machine reach it.</summary>
    public static string? LoopbackAddress(IServer host)
    {
        var address = host.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.Ordinal));
        return address?.Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal).Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal);
    }

    [LoggerMessage(6111, LogLevel.Information, "Autoscaler running in replica {ReplicaId}, term {Term}")]
    private static partial void LogLeading(ILogger logger, string replicaId, long term);

    [LoggerMessage(6110, LogLevel.Error, "An autoscaler pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);
}
