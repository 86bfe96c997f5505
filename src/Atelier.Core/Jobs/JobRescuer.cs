using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Atelier.Core.Jobs;

/// <summary>Puts jobs whose lease expired back in the queue (or fails them), aborts cancellations past their grace, every few seconds.</summary>
public sealed partial class JobRescuer(IServiceScopeFactory scopes, JobSignal signal, JobWatch watch, TimeProvider clock, IOptions<JobsOptions> options, ILogger<JobRescuer> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(Math.Max(1, options.Value.RescueIntervalSeconds)), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                using var scope = scopes.CreateScope();
                var (requeued, ended) = await scope.ServiceProvider.GetRequiredService<JobQueue>()
                    .RescueExpiredAsync(TimeSpan.FromSeconds(options.Value.CancelGraceSeconds), stoppingToken);
                if (requeued + ended.Count > 0)
                {
                    LogRescued(logger, requeued, ended.Count);
                    signal.PulseAll();
                    foreach (var id in ended)
                    {
                        watch.Notify(id);
                    }
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e);
            }
        }
    }

    [LoggerMessage(4000, LogLevel.Warning, "Expired leases: {Requeued} jobs queued again, {Ended} ended for good")]
    private static partial void LogRescued(ILogger logger, int requeued, int ended);

    [LoggerMessage(4001, LogLevel.Error, "Lease rescue failed")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
