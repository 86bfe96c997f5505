using Atelier.Core.Agents;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Atelier.Server.Hosting;

/// <summary>
/// Runs the autoscaler once the server listens (local units' workers need its address): a pass every
/// <see cref="AgentsOptions.ScaleIntervalSeconds"/>, or at once when a unit changes on this replica.
/// </summary>
public sealed partial class AutoscalerHost(Autoscaler autoscaler, WorkerServerAddress address, ServerOptions server, IServer host,
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
            try
            {
                await autoscaler.RunPassAsync(Environment.MachineName + ":" + Environment.ProcessId, 1, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogPassFailed(logger, e);
            }

            await autoscaler.Signal.WaitAsync(interval, stoppingToken);
        }
    }

    /// <summary>The server's first http address with a wildcard host made loopback: where workers on this machine reach it.</summary>
    public static string? LoopbackAddress(IServer host)
    {
        var address = host.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault(a => a.StartsWith("http://", StringComparison.Ordinal));
        return address?.Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal).Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal);
    }

    [LoggerMessage(6110, LogLevel.Error, "An autoscaler pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);
}
