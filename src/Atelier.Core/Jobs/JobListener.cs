using Atelier.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Atelier.Core.Jobs;

/// <summary>
/// Where the database notifies (PostgreSQL), listens for jobs queued and changed on any replica over one connection,
/// and turns each notification into the in-process signal, so a waiting worker is woken at once wherever the job was
/// submitted. Reconnects after a lost connection, and then wakes everyone once (a notification may have been missed).
/// </summary>
public sealed partial class JobListener(DatabaseOptions options, IDatabaseProvider provider, JobSignal signal, JobWatch watch, ILogger<JobListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!provider.Notifies)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await provider.ListenAsync(options, [JobNotifier.QueuedChannel, JobNotifier.ChangedChannel], (channel, payload) =>
                {
                    if (channel == JobNotifier.QueuedChannel)
                    {
                        if (JobNotifier.ParseQueued(payload) is var (origin, agent, model, count))
                        {
                            for (var i = 0; i < count && origin != signal.Origin; i++)
                            {
                                signal.Pulse(agent, model);
                            }
                        }
                        else
                        {
                            signal.PulseAll();
                        }
                    }
                    else
                    {
                        watch.Notify(payload);
                    }
                }, signal.PulseAll, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogLost(logger, e);
                // A reconnect pause in real time: it waits on the network, not on anything a clock in a test decides.
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            }
        }
    }

    [LoggerMessage(4010, LogLevel.Warning, "The job notification listener lost its connection; reconnecting")]
    private static partial void LogLost(ILogger logger, Exception exception);
}
