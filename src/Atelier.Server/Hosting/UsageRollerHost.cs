using Atelier.Core.Coordination;
using Atelier.Core.Usage;
using Microsoft.Extensions.Options;

namespace Atelier.Server.Hosting;

/// <summary>
/// Runs the usage roller in the leader only: a pass every <see cref="UsageOptions.RollIntervalSeconds"/>, and at once
/// again while it is catching up. The roller's conditional watermark keeps a minute from being counted twice even if
/// two replicas lead for a moment.
/// </summary>
public sealed partial class UsageRollerHost(UsageRoller roller, Leadership leadership, TimeProvider clock, IOptions<UsageOptions> options,
    ILogger<UsageRollerHost> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromSeconds(options.Value.RollIntervalSeconds);
        while (!stoppingToken.IsCancellationRequested)
        {
            await leadership.WaitForLeadershipAsync(stoppingToken);
            using var leading = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, leadership.CancellationToken);
            while (!leading.IsCancellationRequested)
            {
                try
                {
                    if (!await roller.RollAsync(leadership.ReplicaId, leading.Token))
                    {
                        await Task.Delay(interval, clock, leading.Token);
                    }
                }
                catch (OperationCanceledException) when (leading.IsCancellationRequested)
                {
                }
                catch (Exception e)
                {
                    LogPassFailed(logger, e);
                    await Task.Delay(interval, clock, leading.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                }
            }
        }
    }

    [LoggerMessage(6120, LogLevel.Error, "A usage rollup pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception e);
}
