using Atelier.Worker.Runner;
using Microsoft.Extensions.Logging;

/// <summary><c>atelier worker</c>: runs jobs leased from a server until Ctrl-C or SIGTERM.</summary>
internal static class WorkerCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        WorkerOptions options;
        try
        {
            options = WorkerOptions.Parse(args);
        }
        catch (Exception e) when (e is ArgumentException or FormatException or UriFormatException)
        {
            await Console.Error.WriteLineAsync($"atelier worker: {e.Message}");
            await Console.Error.WriteLineAsync("usage: atelier worker --server URL --token atw_… [--engine builtin|a1111=URL|comfyui=URL|noop[=ms]] [--slots N] [--id ID] [--models DIR]");
            return ExitCodes.Usage;
        }

        using var loggers = LoggerFactory.Create(b => b.AddJsonConsole(o =>
        {
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
        }));
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
        using var host = new WorkerHost(options, loggers.CreateLogger("Atelier.Worker"));
        try
        {
            await host.RunAsync(stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        return ExitCodes.Ok;
    }
}
