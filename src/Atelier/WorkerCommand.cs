using System.Diagnostics;
using Atelier.Worker.Runner;
using Microsoft.Extensions.Logging;

/// <summary><c>atelier worker</c>: runs jobs leased from a server until Ctrl-C or SIGTERM, a refused key, or the end of its parent.</summary>
internal static partial class WorkerCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        WorkerOptions options;
        try
        {
            options = WorkerOptions.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException or OverflowException)
        {
            await Console.Error.WriteLineAsync($"atelier worker: {e.Message}");
            await Console.Error.WriteLineAsync("usage: atelier worker --server URL --token atw_… [--engine builtin|a1111=URL|comfyui=URL|noop[=ms]] [--slots N] [--id ID] [--models DIR] [--parent-pid PID]");
            return ExitCodes.Usage;
        }

        using var loggers = LoggerFactory.Create(b => b.AddJsonConsole(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        }));
        var logger = loggers.CreateLogger("Atelier.Worker");
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            stop.Cancel();
        });
        var parentGone = false;
        var watching = options.ParentPid is { } pid ? WatchParentAsync(pid, () =>
        {
            parentGone = true;
            LogParentGone(logger, pid);
            stop.Cancel();
        }, stop.Token) : Task.CompletedTask;

        using var host = new WorkerHost(options, logger);
        try
        {
            await host.RunAsync(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        catch (WorkerKeyRefusedException e)
        {
            LogKeyRefused(logger, e.Message, ExitCodes.KeyRefused);
            await stop.CancelAsync();
            await watching;
            return ExitCodes.KeyRefused;
        }

        await stop.CancelAsync();
        await watching;
        return parentGone ? ExitCodes.ParentGone : ExitCodes.Ok;
    }

    /// <summary>
    /// Calls <paramref name="gone"/> once the process <paramref name="pid"/> has ended (checked every second; its start
    /// time guards against a new process that got the same id).
    /// </summary>
    private static async Task WatchParentAsync(int pid, Action gone, CancellationToken stop)
    {
        var started = StartTimeOf(pid);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                if (started is null || StartTimeOf(pid) != started)
                {
                    gone();
                    return;
                }

                await Task.Delay(TimeSpan.FromSeconds(1), stop);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static DateTime? StartTimeOf(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : process.StartTime;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    [LoggerMessage(5010, LogLevel.Critical, "The server refused this worker's key ({Reason}): it was revoked, replaced or never issued. Stopping with exit code {ExitCode}; issue a new key (POST /api/v1/platform/worker-keys) and start the worker with it")]
    private static partial void LogKeyRefused(ILogger logger, string reason, int exitCode);

    [LoggerMessage(5011, LogLevel.Warning, "The process that started this worker (pid {Pid}) is gone: stopping")]
    private static partial void LogParentGone(ILogger logger, int pid);
}
